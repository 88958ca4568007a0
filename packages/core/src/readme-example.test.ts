// The "custom pipeline" of README.md, run as a test (with tiny sizes) so the documented code keeps working.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '@relign/tensor/testing';
// --- README code starts (imports) ---
import { CausalLM, trainBpe } from '@relign/lm';
import { generate } from '@relign/rollout';
import { rewardFunction } from '@relign/reward-model';
import { Trainer, type Metrics } from './index.js'; // '@relign/core' in the README
import { reinforcePlugin } from './testing/index.js'; // or: plugin: 'p3o-v2' (resolved by name)
// --- README code ends (imports) ---

describe('README custom pipeline', () => {
  beforeAll(() => useBackend('cpu'));

  it('runs as documented', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relign-readme-'));
    try {
      // --- README code starts ---
      const texts = ['the movie was good', 'the food was bad', 'a good day', 'what a great plot'];
      const tokenizer = trainBpe(texts, { vocabSize: 264 });
      const policy = CausalLM.create(
        { vocab_size: tokenizer.vocabSize, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2 },
        1,
      ); // or: await CausalLM.fromPretrained('my-sft-model')

      // Any function of (prompt, response) text is a reward; here: count positive words.
      const positive = rewardFunction((_prompt, response) => (response.match(/good|great/g) ?? []).length);

      const prompts = ['the movie was', 'the food was', 'what a'];
      const generation = { maxNewTokens: 8, temperature: 1, stopTokenIds: [tokenizer.eosId] };

      // Sample before training, straight from @relign/rollout.
      const before = await generate(
        policy,
        prompts.map((p) => tokenizer.encode(p)),
        { ...generation, seed: 0 },
      );

      const trainer = new Trainer({
        policy, // the reference defaults to a frozen copy of it
        tokenizer, // encodes the text prompts, decodes responses for the text reward
        prompts, // texts, token arrays, or records { prompt, ...fields } (below)
        reward: positive,
        plugin: reinforcePlugin,
        pluginConfig: { lr: 1e-3 },
        generation,
        promptsPerIteration: 3,
        iterations: 4,
        kl: { kind: 'fixed', value: 0.05 },
        checkpointDir: join(dir, 'checkpoints'),
        checkpointEvery: 2,
        metricsPath: join(dir, 'metrics.jsonl'),
        seed: 42,
      });
      trainer.on('metrics', ({ step, metrics }: { step: number; metrics: Metrics }) =>
        console.log(step, metrics['reward/mean'], metrics['objective/kl']),
      );
      const result = await trainer.train(); // { step: 4, stopped: 'completed', checkpoint: '.../step-00000004' }
      trainer.dispose();
      // --- README code ends ---
      expect(before.batchSize).toBe(3);
      expect(result).toMatchObject({ step: 4, stopped: 'completed' });
      expect(result.checkpoint).toMatch(/step-00000004$/);
      const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(4);
      policy.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
