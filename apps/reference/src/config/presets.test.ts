import { checkModelSize, loadDefaultPretrainCorpus, parameterCount, resolveConfig } from '@relign/lm';
import { describe, expect, it } from 'vitest';
import { pipelineStages } from '../pipeline.js';
import { pretrainTokenizer } from '../stages/pretrain.js';
import { fitRow, KNOWN_MODELS } from '../fit.js';
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

  it('trains SmolLM2-135M-Instruct from the Hub through LoRA, and runs every stage', () => {
    expect(cfg.model.base).toBe('HuggingFaceTB/SmolLM2-135M-Instruct');
    expect(cfg.lora).toMatchObject({ enabled: true, r: 16, alpha: 32 });
    // 134.5M parameters (from its config.json shape), 4.9M of them in the r-16 adapters; fits wasm even fully.
    const fit = fitRow(cfg.model.base, KNOWN_MODELS[cfg.model.base]!);
    expect(fit.params).toBe(134_515_008);
    expect(fit.loraParams).toBe(4_884_480);
    expect(pipelineStages(cfg).map((s) => s.name)).toEqual([
      'sft',
      'label',
      'reward',
      'train:ppo-max',
      'train:dpo',
      'train:p3o-v1',
      'train:p3o-v2',
      'train:grpo',
      'train:rloo',
      'eval',
      'frontier',
      'report',
    ]);
  });

  it("with model.base 'pretrain', pretrains a model of GPT-2 small’s shape first", () => {
    const own = buildConfig({ preset: 'gpu', config: { model: { base: 'pretrain' } } });
    expect(pipelineStages(own).map((s) => s.name)[0]).toBe('pretrain');
    expect(shape).toEqual(GPT2_SMALL);
    // The shape builds (closed-form count, no 124M allocation in a test) and fits this machine's memory.
    const config = resolveConfig(shape, 'gpu preset');
    expect(parameterCount(config)).toBe(124_439_808);
    expect(() => checkModelSize(config, 'gpu preset')).not.toThrow();
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
