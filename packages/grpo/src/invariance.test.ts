import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { Trainer } from '@relign/core';
import {
  countChangedParameters,
  countTokenReward,
  maxAbsParameterDifference,
  snapshotParameters,
  type ParameterSnapshot,
} from '@relign/core/testing';
import plugin, { type GrpoConfig } from './index.js';

/**
 * Invariance to a per-prompt shift of the reward, end to end (docs/algorithms.md §8.1): a Trainer run (generate →
 * score → reference log-probs → update, 4 iterations) with r = the count of token 3 and one with r + δ(prompt),
 * δ = 100·promptIndex − 300, end with bit-identical parameters. The runs share every seed, so while the updates
 * agree the rollouts agree too.
 *
 * Written with the public Trainer, as a third-party plugin's author would (`rewardTranslationRun` of
 * `@relign/core/testing`, which the P3O packages use, takes GRPO's keys through its `baseConfig` option).
 */
const PROMPTS = [[1], [2, 3], [4], [5, 6], [7], [8, 9]];

async function run(
  shifted: boolean,
  config: Partial<GrpoConfig>,
): Promise<{ initial: ParameterSnapshot; final: ParameterSnapshot }> {
  const index = (p: ArrayLike<number>): number =>
    PROMPTS.findIndex((q) => q.length === p.length && q.every((t, k) => t === p[k]));
  const policy = CausalLM.create({ vocab_size: 16, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }, 5);
  const initial = snapshotParameters(policy);
  const trainer = new Trainer({
    policy,
    prompts: PROMPTS,
    reward: countTokenReward(3, shifted ? (p) => 100 * index(p) - 300 : undefined),
    plugin,
    // β = 0.04 (the paper's): the k3 term is on, and must not break the invariance either.
    pluginConfig: {
      lr: 1e-2,
      numGenerations: 4,
      numIterations: 2,
      groupsPerMinibatch: 2,
      beta: 0.04,
      ...config,
    },
    generation: { maxNewTokens: 6, stopTokenIds: [0] },
    promptsPerIteration: 4,
    iterations: 4,
    seed: 9,
  });
  try {
    await trainer.train();
    return { initial, final: snapshotParameters(policy) };
  } finally {
    trainer.dispose();
    policy.dispose();
  }
}

describe.each(TEST_BACKENDS)('grpo reward-translation invariance on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each([
    ["scaleRewards 'group', lossType 'dapo' (defaults)", {}],
    ["scaleRewards 'none', lossType 'dr_grpo' (Dr. GRPO)", { scaleRewards: 'none', lossType: 'dr_grpo' }],
    ["lossType 'grpo'", { lossType: 'grpo' }],
  ] as const)('r and r + δ(prompt) train to bit-identical parameters (%s)', async (_label, config) => {
    const plain = await run(false, config);
    const shifted = await run(true, config);
    expect(countChangedParameters(plain.final, shifted.final)).toBe(0);
    // Not vacuous: training moved the parameters far.
    expect(maxAbsParameterDifference(plain.initial, plain.final)).toBeGreaterThan(1e-2);
  });

  it("is sensitive: scaleRewards 'batch' divides by the batch std, which δ(prompt) inflates", async () => {
    const plain = await run(false, { scaleRewards: 'batch' });
    const shifted = await run(true, { scaleRewards: 'batch' });
    expect(maxAbsParameterDifference(plain.final, shifted.final)).toBeGreaterThan(1e-3);
  });
});
