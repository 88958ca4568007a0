import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { Trainer, type Metrics } from '@relign/core';
import {
  countTokenReward,
  maxAbsParameterDifference,
  relativeParameterDifference,
  snapshotParameters,
  type ParameterSnapshot,
} from '@relign/core/testing';
import plugin from './index.js';

/**
 * Invariance to a per-prompt shift of the reward, end to end (docs/algorithms.md §9): a Trainer run with reward
 * r (the count of token 3) and one with r + δ(prompt), δ = 100·promptIndex − 300, end with the same parameters.
 * The runs share every seed, so as long as the updates agree the rollouts agree. The KL penalty is on (β from
 * the Trainer), so the test also covers the penalised reward R = r − β·KL.
 *
 * Written with the public Trainer, as a third-party plugin's author would (`rewardTranslationRun` of
 * @relign/core/testing, which the P3O packages use, takes RLOO's keys through its `baseConfig` option).
 */
const PROMPTS = [[1], [2, 3], [4], [5, 6], [7], [8, 9]];

async function run(
  shifted: boolean,
  klCoef: number,
): Promise<{ initial: ParameterSnapshot; final: ParameterSnapshot; metrics: Metrics[] }> {
  const index = (p: ArrayLike<number>) =>
    PROMPTS.findIndex((q) => q.length === p.length && q.every((t, i) => t === p[i]));
  const policy = CausalLM.create({ vocab_size: 16, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }, 5);
  const initial = snapshotParameters(policy);
  const metrics: Metrics[] = [];
  const trainer = new Trainer({
    policy,
    prompts: PROMPTS,
    reward: countTokenReward(3, shifted ? (p) => 100 * index(p) - 300 : undefined),
    plugin,
    pluginConfig: { lr: 1e-2, rlooK: 3, epochs: 2, promptsPerMinibatch: 2 },
    kl: { kind: 'fixed', value: klCoef },
    generation: { maxNewTokens: 6, stopTokenIds: [0] },
    promptsPerIteration: 4,
    iterations: 4,
    seed: 9,
    onMetrics: (m) => metrics.push(m),
  });
  try {
    await trainer.train();
    return { initial, final: snapshotParameters(policy), metrics };
  } finally {
    trainer.dispose();
    policy.dispose();
  }
}

describe.each(TEST_BACKENDS)('rloo reward-translation invariance on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each([0.05, 0.5])('r and r + δ(prompt) train to the same parameters (β = %s)', async (beta) => {
    const plain = await run(false, beta);
    const shifted = await run(true, beta);
    // Integer rewards and shifts: the leave-one-out differences are exact, so the runs are bit-identical.
    expect(relativeParameterDifference(plain.final, shifted.final)).toBe(0);
    // Not vacuous: the rewards did differ, the KL penalty was active, and training moved the parameters.
    const mean = (ms: Metrics[], k: string) => ms.reduce((a, m) => a + m[k]!, 0) / ms.length;
    expect(
      Math.abs(mean(shifted.metrics, 'reward/mean') - mean(plain.metrics, 'reward/mean')),
    ).toBeGreaterThan(1);
    expect(mean(plain.metrics, 'objective/kl')).toBeGreaterThan(1e-3);
    expect(maxAbsParameterDifference(plain.initial, plain.final)).toBeGreaterThan(1e-2);
  });
});
