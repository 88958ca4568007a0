import { describe, expect, it } from 'vitest';
import { winRate } from './win-rate.js';

describe('winRate', () => {
  it('counts wins 1, ties ½, losses 0 (hand-computed)', () => {
    // 1 > 0 win, 2 = 2 tie, 3 < 5 loss, 4 = 4 tie -> (1 + .5 + 0 + .5) / 4.
    expect(winRate([1, 2, 3, 4], [0, 2, 5, 4])).toBe(0.5);
    expect(winRate([3, 1], [1, 1])).toBe(0.75);
    expect(winRate([0.1, 0.2, 0.3], [0, 0, 0])).toBe(1);
  });
  it('is complementary: winRate(a, b) + winRate(b, a) = 1', () => {
    const a = [0.3, -1, 2, 2, 0.5];
    const b = [0.1, -1, 3, 1, 0.5];
    expect(winRate(a, b) + winRate(b, a)).toBe(1);
    expect(winRate(a, a)).toBe(0.5);
  });
  it('rejects mismatched, empty or non-finite input', () => {
    expect(() => winRate([1], [1, 2])).toThrow(/same prompts/);
    expect(() => winRate([], [])).toThrow(/no scores/);
    expect(() => winRate([NaN], [1])).toThrow(/score 0 is not finite/);
  });
});
