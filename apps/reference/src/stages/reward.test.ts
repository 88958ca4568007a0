import { describe, expect, it } from 'vitest';
import { humanAgreement } from './reward.js';

describe('humanAgreement', () => {
  it('computes the ranking accuracy over (positive, negative) pairs with ties counted half', () => {
    // positives 3, 1; negatives 2, 1. Pairs: (3>2) 1, (3>1) 1, (1<2) 0, (1=1) ½ → 2.5 / 4.
    const r = humanAgreement([3, 1, 2, 1], [1, 1, 0, 0], 1.5);
    expect(r.pairAccuracy).toBeCloseTo(0.625, 12);
    // Threshold 1.5: 3 → pos ✓, 1 → neg ✗, 2 → pos ✗, 1 → neg ✓.
    expect(r.accuracy).toBeCloseTo(0.5, 12);
  });

  it('is 1 for a perfect ranking, 0 for a reversed one, and counts a score at the threshold half', () => {
    expect(humanAgreement([0.9, 0.8, -0.1, -0.5], [1, 1, 0, 0], 0)).toEqual({ pairAccuracy: 1, accuracy: 1 });
    expect(humanAgreement([-0.9, 0.8], [1, 0], 0)).toEqual({ pairAccuracy: 0, accuracy: 0 });
    expect(humanAgreement([0, 0], [1, 0], 0)).toEqual({ pairAccuracy: 0.5, accuracy: 0.5 });
  });

  it('matches the brute-force pair count on random data', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const scores = Array.from({ length: 60 }, () => Math.round(rand() * 10) / 10);
    const labels = scores.map(() => (rand() < 0.5 ? 1 : 0) as 0 | 1);
    let wins = 0;
    let pairs = 0;
    for (let i = 0; i < 60; i++) {
      for (let j = 0; j < 60; j++) {
        if (labels[i] === 1 && labels[j] === 0) {
          pairs++;
          wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
        }
      }
    }
    expect(humanAgreement(scores, labels, 0.5).pairAccuracy).toBeCloseTo(wins / pairs, 12);
  });
});
