import { describe, expect, it } from 'vitest';
import { distinctN, repetition, textTokens } from './text-metrics.js';

describe('textTokens', () => {
  it('splits lowercase words and single punctuation marks', () => {
    expect(textTokens("I didn't LIKE it!!! 10/10")).toEqual([
      'i',
      "didn't",
      'like',
      'it',
      '!',
      '!',
      '!',
      '10',
      '/',
      '10',
    ]);
    expect(textTokens('   ')).toEqual([]);
  });
});

describe('distinctN', () => {
  // Hand count: unigrams a b a b a c -> 6 total, {a,b,c} unique; bigrams ab ba ab ac -> 4 total, 3 unique.
  const seqs = [
    ['a', 'b', 'a', 'b'],
    ['a', 'c'],
  ];
  it('counts unique / total n-grams over all responses', () => {
    expect(distinctN(seqs, 1)).toBeCloseTo(3 / 6, 12);
    expect(distinctN(seqs, 2)).toBeCloseTo(3 / 4, 12);
    // Trigrams: aba, bab (first response only): 2 unique of 2.
    expect(distinctN(seqs, 3)).toBe(1);
  });
  it('counts n-grams across responses, not within one', () => {
    // The same response twice: every n-gram of the second copy repeats one of the first.
    expect(
      distinctN(
        [
          ['x', 'y'],
          ['x', 'y'],
        ],
        2,
      ),
    ).toBe(0.5);
  });
  it('is 0 when no response has n tokens, and rejects a bad n', () => {
    expect(distinctN([['a'], []], 2)).toBe(0);
    expect(() => distinctN(seqs, 0)).toThrow(/n must be an integer >= 1/);
  });
  it('does not confuse n-grams whose joined text would collide', () => {
    expect(
      distinctN(
        [
          ['a b', 'c'],
          ['a', 'b c'],
        ],
        2,
      ),
    ).toBe(1);
  });
});

describe('repetition', () => {
  it('averages 1 − unique/total n-grams over responses that have any', () => {
    // Bigrams of a b a b: ab ba ab -> 1 repeated of 3; a c: ac -> 0; "z" has no bigram and is skipped.
    expect(repetition([['a', 'b', 'a', 'b'], ['a', 'c'], ['z']], 2)).toBeCloseTo((1 / 3 + 0) / 2, 12);
    // Unigrams: a b a b -> 2 repeated of 4; a c -> 0; z -> 0 (three responses).
    expect(repetition([['a', 'b', 'a', 'b'], ['a', 'c'], ['z']], 1)).toBeCloseTo((0.5 + 0 + 0) / 3, 12);
  });
  it('is high for a collapsed response and 0 without repeats', () => {
    expect(repetition([textTokens('great great great great great')], 2)).toBeCloseTo(3 / 4, 12);
    expect(repetition([textTokens('the food was fine')])).toBe(0);
    expect(repetition([[]])).toBe(0);
  });
});
