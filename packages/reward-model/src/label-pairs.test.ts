import { describe, expect, it } from 'vitest';
import { labelPairs } from './label-pairs.js';
import { rewardFunction } from './reward-function.js';
import { afinnReward, wordTokenizer } from './test-fixtures.js';

/** Oracle whose score is the number written in the response text (`"1.5#a"` scores 1.5). */
const numeric = rewardFunction((_p: string, r: string) => Number.parseFloat(r), { name: 'numeric' });

describe('labelPairs', () => {
  it('at temperature 0 picks the higher score, skipping ties and identical responses', async () => {
    const r = await labelPairs(
      ['p0', 'p1', 'p2', 'p3'],
      ['2#a', '1#a', '3#a', '5#same'],
      ['1#b', '4#b', '3#b', '5#same'],
      numeric,
      { temperature: 0 },
    );
    expect(r.pairs).toEqual([
      { prompt: 'p0', chosen: '2#a', rejected: '1#b' },
      { prompt: 'p1', chosen: '4#b', rejected: '1#a' },
    ]);
    expect(r.rows).toEqual([0, 1]);
    expect(r.winner).toEqual(['A', 'B', null, null]);
    expect(Array.from(r.probA)).toEqual([1, 0, 0.5, 0.5]);
    expect(r.ties).toBe(1);
    expect(r.identical).toBe(1);
    expect(Array.from(r.scoresA)).toEqual([2, 1, 3, 5]);
  });

  it('samples P(A wins) = sigmoid((sA - sB) / T), reproducibly under a seed', async () => {
    const n = 4000;
    const prompts = Array.from({ length: n }, (_, i) => `p${i}`);
    const a = prompts.map(() => '1#a');
    const b = prompts.map(() => '0#b');
    for (const temperature of [1, 2]) {
      const r = await labelPairs(prompts, a, b, numeric, { temperature, seed: 11 });
      const p = 1 / (1 + Math.exp(-1 / temperature));
      expect(r.probA[0]).toBeCloseTo(p, 12);
      const winsA = r.winner.filter((w) => w === 'A').length / n;
      // 4 binomial standard deviations: fails by chance with probability < 1e-4.
      expect(Math.abs(winsA - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
      expect(r.pairs).toHaveLength(n);
      const again = await labelPairs(prompts, a, b, numeric, { temperature, seed: 11 });
      expect(again.winner).toEqual(r.winner);
      const other = await labelPairs(prompts, a, b, numeric, { temperature, seed: 12 });
      expect(other.winner).not.toEqual(r.winner);
    }
  });

  it("keeps each row's label independent of the other rows", async () => {
    const full = await labelPairs(['x', 'y', 'z'], ['0#a', '0#a', '0#a'], ['0#b', '0#b', '0#b'], numeric, {
      temperature: 1,
      seed: 5,
    });
    // Row 1 made identical: it is skipped, and rows 0 and 2 keep their labels.
    const skipped = await labelPairs(
      ['x', 'y', 'z'],
      ['0#a', '0#same', '0#a'],
      ['0#b', '0#same', '0#b'],
      numeric,
      {
        temperature: 1,
        seed: 5,
      },
    );
    expect(skipped.winner).toEqual([full.winner[0], null, full.winner[2]]);
  });

  it('labels token rows with a text oracle through its tokenizer', async () => {
    const enc = (s: string) => wordTokenizer.encode(s);
    const r = await labelPairs([enc('the food was')], [enc('awful and bad')], [enc('good')], afinnReward(), {
      temperature: 0,
    });
    expect(r.pairs).toEqual([
      { prompt: enc('the food was'), chosen: enc('good'), rejected: enc('awful and bad') },
    ]);
  });

  it('rejects bad temperatures, mismatched lengths and non-finite oracle scores', async () => {
    await expect(labelPairs(['a'], ['1'], ['2'], numeric, { temperature: -1 })).rejects.toThrow(
      /temperature must be a finite number >= 0/,
    );
    await expect(labelPairs(['a'], ['1', '2'], ['2'], numeric, { temperature: 0 })).rejects.toThrow(
      /same length/,
    );
    await expect(labelPairs(['a', 'b'], ['1', 'x'], ['2', '3'], numeric, { temperature: 0 })).rejects.toThrow(
      /"numeric" returned a non-finite score for row 1/,
    );
    await expect(labelPairs(['a'], ['1'], ['2'], {} as never, { temperature: 0 })).rejects.toThrow(
      /oracle must be/,
    );
  });
});
