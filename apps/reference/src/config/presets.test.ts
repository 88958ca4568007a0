import { checkModelSize, loadDefaultPretrainCorpus, parameterCount, resolveConfig } from '@relign/lm';
import { describe, expect, it } from 'vitest';
import { pipelineStages } from '../pipeline.js';
import { pretrainTokenizer } from '../stages/pretrain.js';
import { buildConfig } from './load.js';

/** GPT-2 small (Hugging Face `gpt2`): 124,439,808 parameters. */
const GPT2_SMALL = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };

describe('the gpu preset', () => {
  const cfg = buildConfig({ preset: 'gpu' });
  const p = cfg.pretrain;
  const shape = {
    vocab_size: p.vocabSize,
    n_positions: p.nPositions,
    n_embd: p.nEmbd,
    n_layer: p.nLayer,
    n_head: p.nHead,
  };

  it('pretrains a model of GPT-2 small’s shape, then runs every stage', () => {
    expect(cfg.model.base).toBe('pretrain');
    expect(shape).toEqual(GPT2_SMALL);
    // The shape builds (closed-form count, no 124M allocation in a test) and fits this machine's memory.
    const config = resolveConfig(shape, 'gpu preset');
    expect(parameterCount(config)).toBe(124_439_808);
    expect(() => checkModelSize(config, 'gpu preset')).not.toThrow();
    expect(pipelineStages(cfg).map((s) => s.name)).toEqual([
      'pretrain',
      'sft',
      'label',
      'reward',
      'train:ppo-max',
      'train:dpo',
      'train:p3o-v1',
      'train:p3o-v2',
      'eval',
      'frontier',
      'report',
    ]);
  });

  it('takes a checkpoint the user brings instead of pretraining', () => {
    const own = buildConfig({ preset: 'gpu', config: { model: { base: '/models/gpt2' } } });
    expect(pipelineStages(own).map((s) => s.name)).not.toContain('pretrain');
  });

  it("reaches the 50257-token vocabulary on the pretrain stage's corpus", async () => {
    // With the schema's default bpeMinFrequency (2) the corpus supports only ~45k tokens and the stage
    // would fail at its first step.
    const corpus = await loadDefaultPretrainCorpus({ seed: cfg.seed });
    const tok = pretrainTokenizer(cfg)(corpus.train, {
      vocabSize: p.vocabSize,
      specialTokens: ['<|endoftext|>'],
    });
    expect(tok.vocabSize).toBe(50257);
  });
});
