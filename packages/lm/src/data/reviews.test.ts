import { describe, expect, it } from 'vitest';
import { loadReviewSentences } from './reviews.js';

describe('loadReviewSentences', () => {
  it('splits deterministically, disjointly and stratified', async () => {
    const a = await loadReviewSentences({ seed: 1, heldOutFraction: 0.1 });
    const b = await loadReviewSentences({ seed: 1, heldOutFraction: 0.1 });
    const c = await loadReviewSentences({ seed: 2, heldOutFraction: 0.1 });
    expect(b).toEqual(a);
    const train = new Set(a.train.map((s) => s.text));
    expect(a.heldOut.some((s) => train.has(s.text))).toBe(false);
    expect(new Set([...a.train, ...a.heldOut].map((s) => s.text)).size).toBe(
      a.train.length + a.heldOut.length,
    );
    // ~3000 sentences minus a few duplicates; 10 % held out in each (source, label) group.
    expect(a.train.length + a.heldOut.length).toBeGreaterThan(2950);
    expect(a.heldOut.length).toBeGreaterThan(290);
    expect(a.heldOut.length).toBeLessThan(310);
    for (const source of ['imdb', 'amazon', 'yelp'] as const) {
      for (const label of [0, 1] as const) {
        const n = a.heldOut.filter((s) => s.source === source && s.label === label).length;
        expect(n).toBeGreaterThanOrEqual(49);
        expect(n).toBeLessThanOrEqual(51);
      }
    }
    expect(c.heldOut.map((s) => s.text)).not.toEqual(a.heldOut.map((s) => s.text));
    expect(a.train.every((s) => s.text === s.text.trim() && s.text !== '')).toBe(true);
  });

  it('validates heldOutFraction', async () => {
    await expect(loadReviewSentences({ heldOutFraction: 1 })).rejects.toThrow(
      /heldOutFraction must be in \[0, 1\)/,
    );
  });
});
