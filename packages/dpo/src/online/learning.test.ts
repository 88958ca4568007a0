import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { Trainer, type Metrics } from '@relign/core';
import { CONFORMANCE_DEFAULTS, countLowIdsReward } from '@relign/core/testing';
import plugin from '../index.js';

/**
 * Online learning on the synthetic task of the conformance suite: the reward is the number of response tokens
 * with an id in [1, 8) (at most 8 with 8 new tokens); the tiny random policy (V = 32) starts near 8 · 7/32.
 * Measured with these seeds (identical on cpu and wasm): eval reward 1.31 → 7.94 with eval KL 25.5 (hard labels)
 * and 1.31 → 7.88 with KL 14.1 (soft labels) after 12 iterations of 8 prompts; ~4 s (cpu) / ~1–2 s (wasm) per run.
 */
const PROMPTS = Array.from({ length: 16 }, (_, i) =>
  [1 + ((i * 7) % 31), 1 + ((i * 13 + 5) % 31), 1 + ((i * 3 + 11) % 31)].slice(0, 1 + (i % 3)),
);

describe.each(TEST_BACKENDS)('online dpo learning on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  for (const labels of ['hard', 'soft'] as const) {
    it(`raises the eval reward of the synthetic task from 1.3 to >= 6 in 12 iterations (${labels} labels)`, async () => {
      const policy = CausalLM.create(CONFORMANCE_DEFAULTS.model, 7);
      const log: Metrics[] = [];
      const trainer = new Trainer({
        policy,
        prompts: PROMPTS,
        evalPrompts: PROMPTS,
        reward: countLowIdsReward(),
        plugin: plugin,
        // lr raised for the tiny model (the default 8e-6 is P3O's for 6B models, docs/algorithms.md §1.9).
        pluginConfig: { lr: 1e-2, epochs: 2, pairsPerMinibatch: 4, labels },
        generation: { maxNewTokens: 8, stopTokenIds: [0] },
        promptsPerIteration: 8,
        iterations: 12,
        seed: 3,
        onMetrics: (m) => log.push(m),
      });
      try {
        const before = await trainer.evaluate();
        await trainer.train();
        const after = await trainer.evaluate();
        const b = before['eval/reward/mean']!;
        const a = after['eval/reward/mean']!;
        expect(b).toBeLessThan(2);
        expect(a).toBeGreaterThanOrEqual(6);
        // The policy drifts from the reference as it learns (DPO's implicit KL), and the rollouts' reward rose too.
        expect(after['eval/objective/kl']!).toBeGreaterThan(1);
        expect(log.at(-1)!['reward/mean']!).toBeGreaterThan(log[0]!['reward/mean']! + 3);
        for (const m of log) expect(m['train/skipped_steps']).toBe(0);
      } finally {
        trainer.dispose();
        policy.dispose();
      }
    });
  }
});
