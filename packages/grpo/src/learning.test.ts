import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { countTokenLearningRun } from '@relign/core/testing';
import plugin from './index.js';

/**
 * Learning test on a tiny synthetic task: the reward is how many times token 3 appears in the response (at
 * most 8 new tokens, stop token 0), from a random 1-layer model (V = 16, width 32) whose rollouts score ~0.4.
 * G = 4 completions for each of 8 prompts per iteration, μ = 2, lr 1e-2 (TRL's 1e-6 is for billion-parameter
 * models). With the paper's β = 0.04 the policy collapses onto "3 3 3 …" (reward near the most, 8); with β = 1
 * the k3 term holds it near the reference while the reward still rises: the regulariser works.
 */
describe.each(TEST_BACKENDS)('grpo learning on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  const mean = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / xs.length;
  const run = async (beta: number) => {
    const history = await countTokenLearningRun(plugin, {
      iterations: 20,
      klCoef: beta,
      config: { numGenerations: 4, lr: 1e-2, beta, numIterations: 2 },
    });
    expect(history.every((m) => m['train/skipped_steps'] === 0)).toBe(true);
    return {
      reward: history.map((m) => m['reward/mean']!),
      kl: history.map((m) => m['objective/kl']!), // k1 sequence sum Σ(ℓ_old − ℓ_ref), batch mean
    };
  };

  it('raises the reward from ~0.4 to > 6 with β = 0.04, and keeps KL bounded with β = 1', async () => {
    // Measured (cpu and wasm alike): β 0.04: reward 0.44 (first 3) → 7.69 (last 5), KL ≈ 18.5 nats at the end.
    const weak = await run(0.04);
    expect(mean(weak.reward.slice(0, 3))).toBeLessThan(1);
    expect(mean(weak.reward.slice(-5))).toBeGreaterThan(6);
    // β 1: reward 0.43 → 1.07 (last 10), KL at most 0.96 (last-10 mean 0.52).
    const strong = await run(1);
    expect(mean(strong.reward.slice(-10))).toBeGreaterThan(mean(strong.reward.slice(0, 3)) + 0.3);
    expect(Math.max(...strong.kl)).toBeLessThan(2);
    expect(mean(strong.kl.slice(-5))).toBeLessThan(mean(weak.kl.slice(-5)) / 5);
  });
});
