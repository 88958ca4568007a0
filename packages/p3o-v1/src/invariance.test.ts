import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import {
  maxAbsParameterDifference,
  relativeParameterDifference,
  rewardTranslationRun,
} from '@relign/core/testing';
import plugin from './index.js';

/**
 * Invariance to reward translation, end to end (docs/algorithms.md §1.10): a full Trainer run (generate → score → reference
 * log-probs → plugin.update, several iterations) with reward r and one with r + δ(prompt), δ = 100·promptIndex − 300,
 * end with the same parameters. The runs share every seed, so as long as the updates agree the rollouts agree.
 */

describe.each(TEST_BACKENDS)('p3o-v1 reward-translation invariance on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each([
    ['default reward processing', {}],
    ["rewardScaling 'pairwise-std'", { rewardScaling: 'pairwise-std' }],
  ])('r and r + δ(prompt) train to the same parameters (%s)', async (_label, config) => {
    const plain = await rewardTranslationRun(plugin, false, config);
    const shifted = await rewardTranslationRun(plugin, true, config);
    // Within float32 rounding (1e-5 relative); with integer rewards and shifts it is in fact bit-identical.
    expect(relativeParameterDifference(plain.final, shifted.final)).toBeLessThanOrEqual(1e-5);
    // Not vacuous: training moved the parameters by far more than the tolerance (measured: max |Δθ| ≈ 0.09).
    expect(maxAbsParameterDifference(plain.initial, plain.final)).toBeGreaterThan(1e-2);
  });

  it("is sensitive: the authors' raw-score clip (rewardClip 10) breaks the invariance for δ up to ±300", async () => {
    const plain = await rewardTranslationRun(plugin, false, { rewardClip: 10 });
    const shifted = await rewardTranslationRun(plugin, true, { rewardClip: 10 });
    expect(relativeParameterDifference(plain.final, shifted.final)).toBeGreaterThan(1e-3); // measured ≈ 1.7
  });
});
