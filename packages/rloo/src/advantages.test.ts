import { describe, expect, it } from 'vitest';
import { rlooAdvantages, whitenAdvantages } from './index.js';

describe('rlooAdvantages (docs/algorithms.md §9)', () => {
  it('matches vector T17 (rewards of T16a, k = 4)', () => {
    const rewards = [1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5, 2, 1, 0, -1];
    const expected = [0.666667, -0.666667, -0.666667, 0.666667, 0, 0, 0, 0, 2, 0.666667, -0.666667, -2];
    const a = rlooAdvantages(rewards, 4);
    expect(a).toHaveLength(12);
    a.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 6));
  });

  it("matches T4's first entry (TRL's test, re-laid out with each prompt's k = 4 rewards adjacent)", () => {
    // TRL's layout is [k, prompts]: prompt 0 gets 1, 2, 5, 8.
    expect(rlooAdvantages([1, 2, 5, 8], 4)[0]).toBeCloseTo(1 - (2 + 5 + 8) / 3, 12);
  });

  it('equals k/(k − 1)·(R − group mean), and a per-prompt shift changes nothing, bit for bit', () => {
    const r = [3, 0, 1, 2, 5, 4];
    const a = rlooAdvantages(r, 3);
    const mean = [4 / 3, 4 / 3, 4 / 3, 11 / 3, 11 / 3, 11 / 3];
    a.forEach((x, i) => expect(x).toBeCloseTo(1.5 * (r[i]! - mean[i]!), 12));
    const shifted = r.map((x, i) => x + (i < 3 ? 1e6 : -300));
    expect(rlooAdvantages(shifted, 3)).toEqual(a);
  });

  it('rejects k < 2, a length that is not a multiple of k, and non-finite rewards', () => {
    expect(() => rlooAdvantages([1, 2], 1)).toThrow(/k must be an integer >= 2/);
    expect(() => rlooAdvantages([1, 2, 3], 2)).toThrow(/rewards\.length \(3\) must be a multiple of k \(2\)/);
    expect(() => rlooAdvantages([1, NaN], 2)).toThrow(/rewards\[1\] is NaN/);
  });

  it('whitens with the unbiased std (TRL normalize_advantage)', () => {
    const w = whitenAdvantages([1, 2, 3]);
    expect(w[0]).toBeCloseTo(-1 / (1 + 1e-8), 9);
    expect(w[1]).toBe(0);
  });
});
