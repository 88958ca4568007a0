import { describe, expect, it } from 'vitest';
import { packDocuments } from './pack.js';
import { unigramBaseline } from './unigram.js';

describe('packDocuments', () => {
  it('packs with EOS separators and stride blockSize − 1 (hand-checked)', () => {
    const { blocks, streamTokens } = packDocuments([[1, 2], [3], [4, 5, 6]], { blockSize: 3, eosId: 0 });
    // stream: 1 2 0 3 0 4 5 6 0 (9 tokens); blocks start at 0, 2, 4, 6.
    expect(streamTokens).toBe(9);
    expect(blocks.map((b) => Array.from(b.ids))).toEqual([
      [1, 2, 0],
      [0, 3, 0],
      [0, 4, 5],
      [5, 6, 0],
    ]);
    expect(blocks.every((b) => b.promptLength === 0 && b.length === 3)).toBe(true);
    // Every stream token but the first is a target (positions >= 1) exactly once.
    expect(blocks.flatMap((b) => Array.from(b.ids.subarray(1)))).toEqual([2, 0, 3, 0, 4, 5, 6, 0]);
  });

  it('drops an incomplete tail and validates', () => {
    expect(packDocuments([[1]], { blockSize: 3, eosId: 0 }).blocks).toEqual([]);
    expect(() => packDocuments([], { blockSize: 1, eosId: 0 })).toThrow(/blockSize must be an integer >= 2/);
  });
});

describe('unigramBaseline', () => {
  it('is the add-one unigram NLL over held-out targets (hand-checked)', () => {
    const ex = (ids: number[]) => ({ ids: Int32Array.from(ids), promptLength: 0, length: ids.length });
    // Train targets (positions >= 1): 1, 1, 2 -> counts [0, 2, 1, 0], N = 3, V = 4: p = [1, 3, 2, 1] / 7.
    const train = [ex([3, 1, 1]), ex([0, 2])];
    // Held-out targets: 1 and 3.
    const r = unigramBaseline(train, [ex([2, 1, 3])], 4);
    const expected = (-Math.log(3 / 7) - Math.log(1 / 7)) / 2;
    expect(r.targets).toBe(2);
    expect(r.loss).toBeCloseTo(expected, 12);
    expect(r.perplexity).toBeCloseTo(Math.exp(expected), 10);
    expect(() => unigramBaseline(train, [ex([9, 9])], 4)).toThrow(/token id 9 is outside \[0, 4\)/);
  });
});
