import { describe, expect, it } from 'vitest';
import { groupAdvantages } from './index.js';

// Spec vector T16a (docs/algorithms.md §8.3): three groups of G = 4.
const REWARDS = [1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5, 2, 1, 0, -1];
const T16A = {
  group: [0.865875, -0.865875, -0.865875, 0.865875, 0, 0, 0, 0, 1.161805, 0.387268, -0.387268, -1.161805],
  batch: [0.676912, -0.676912, -0.676912, 0.676912, 0, 0, 0, 0, 2.030735, 0.676912, -0.676912, -2.030735],
  none: [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, 1.5, 0.5, -0.5, -1.5],
} as const;

describe('groupAdvantages (docs/algorithms.md §8.1)', () => {
  it.each(['group', 'batch', 'none'] as const)("matches T16a with scale '%s'", (scale) => {
    const a = groupAdvantages(REWARDS, 4, { scale });
    expect(a).toHaveLength(12);
    a.forEach((v, i) => expect(v).toBeCloseTo(T16A[scale][i]!, 6));
  });

  it("defaults to 'group' (the paper's and TRL's)", () => {
    expect(groupAdvantages(REWARDS, 4)).toEqual(groupAdvantages(REWARDS, 4, { scale: 'group' }));
  });

  it('uses the unbiased std plus 1e-4: two rewards 0 and 1 give ±0.5/(0.707107 + 1e-4)', () => {
    const [a, b] = groupAdvantages([0, 1], 2);
    expect(a).toBeCloseTo(-0.5 / (Math.SQRT1_2 + 1e-4), 12);
    expect(b).toBeCloseTo(0.5 / (Math.SQRT1_2 + 1e-4), 12);
  });

  it("is unchanged by a per-prompt shift δ(x) with 'group' and 'none' (exactly, for integer rewards)", () => {
    const rewards = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8];
    const shifted = rewards.map((r, i) => r + [1e6, -333, 77][Math.floor(i / 4)]!);
    for (const scale of ['group', 'none'] as const)
      expect(groupAdvantages(shifted, 4, { scale })).toEqual(groupAdvantages(rewards, 4, { scale }));
    // 'batch' divides by the std of all rewards, which δ(x) inflates: not invariant (the check can fail).
    expect(groupAdvantages(shifted, 4, { scale: 'batch' })).not.toEqual(
      groupAdvantages(rewards, 4, { scale: 'batch' }),
    );
  });

  it('rejects bad input naming the argument', () => {
    expect(() => groupAdvantages([1, 2, 3], 2)).toThrow(
      /groupAdvantages: rewards has 3 entries, not a multiple of groupSize 2/,
    );
    expect(() => groupAdvantages([1, 2], 0)).toThrow(/groupAdvantages: groupSize must be an integer >= 1/);
    expect(() => groupAdvantages([1, Number.NaN], 2)).toThrow(
      /groupAdvantages: rewards\[1\] = NaN is not a finite number/,
    );
    expect(() => groupAdvantages([1, 2], 2, { scale: 'std' as 'group' })).toThrow(
      /options\.scale must be 'group', 'batch' or 'none'/,
    );
  });
});
