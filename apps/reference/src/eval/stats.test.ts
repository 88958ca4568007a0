import { describe, expect, it } from 'vitest';
import { meanStd } from './stats.js';

describe('meanStd', () => {
  it('gives the mean and the n − 1 standard deviation', () => {
    // 2 4 4 4 5 5 7 9: mean 5, squared deviations sum 32, sample variance 32 / 7.
    const r = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(r.mean).toBe(5);
    expect(r.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(meanStd([3])).toEqual({ mean: 3, std: 0 });
  });
  it('rejects empty and non-finite input, naming it', () => {
    expect(() => meanStd([], 'gold scores')).toThrow(/gold scores is empty/);
    expect(() => meanStd([1, Infinity], 'kl')).toThrow(/kl\[1\] = Infinity/);
  });
});
