import { describe, expect, it } from 'vitest';
import { lengthPenalty, missingEosPenalty, weightedSum } from './compose.js';
import { rewardFunction, type RewardFunction } from './reward-function.js';
import { afinnReward, wordTokenizer } from './test-fixtures.js';

const chars: RewardFunction = rewardFunction((_p: string, r: string) => r.length, { name: 'chars' });
const vowels: RewardFunction = rewardFunction((_p: string, r: string) => (r.match(/[aeiou]/g) ?? []).length, {
  name: 'vowels',
});

describe('weightedSum', () => {
  it('sums weighted terms and reports each term', async () => {
    const fn = weightedSum([{ fn: chars, weight: 0.5 }, { fn: vowels, weight: -2 }, { fn: chars }]);
    expect(fn.name).toBe('weightedSum(0.5*chars + -2*vowels + 1*chars)');
    const { total, components } = await fn.scoreComponents(['', ''], ['banana', 'xyz']);
    // banana: 0.5*6 − 2*3 + 6 = 3; xyz: 0.5*3 − 0 + 3 = 4.5
    expect(Array.from(total)).toEqual([3, 4.5]);
    expect([...components.keys()]).toEqual(['chars', 'vowels', 'chars#2']);
    expect(Array.from(components.get('vowels')!)).toEqual([3, 0]);
    expect(Array.from(await fn.score(['', ''], ['banana', 'xyz']))).toEqual([3, 4.5]);
  });

  it('mixes a text labeler and token-based penalties on token inputs', async () => {
    const fn = weightedSum([
      { fn: afinnReward() },
      { fn: lengthPenalty({ coef: 0.5, offset: 2 }) },
      { fn: missingEosPenalty({ penalty: 10, eosId: 0 }) },
    ]);
    const prompts = [wordTokenizer.encode('the food was'), wordTokenizer.encode('the movie is')];
    const responses = [[...wordTokenizer.encode('good great'), 0], wordTokenizer.encode('bad bad and it')];
    // row 0: afinn 6, 3 tokens (EOS included) → −0.5, ended → 0: 5.5
    // row 1: afinn −6, 4 tokens → −1, no EOS → −10: −17
    expect(Array.from(await fn.score(prompts, responses))).toEqual([5.5, -17]);
  });

  it('rejects a term that returns NaN, naming it', async () => {
    const nan = rewardFunction(() => Number.NaN, { name: 'nan' });
    const bad = {
      name: 'handmade',
      inputKind: 'any' as const,
      score: async () => new Float32Array([Number.NaN]),
    };
    await expect(weightedSum([{ fn: chars }, { fn: nan }]).score([''], ['a'])).rejects.toThrow(
      /"nan".*row 0/,
    );
    await expect(weightedSum([{ fn: bad }]).score([''], ['a'])).rejects.toThrow(/"handmade".*row 0/);
  });

  it('validates its terms', () => {
    expect(() => weightedSum([])).toThrow(/non-empty/);
    expect(() => weightedSum([{ fn: {} as RewardFunction }])).toThrow(
      /terms\[0\]\.fn must be a RewardFunction/,
    );
    expect(() => weightedSum([{ fn: chars, weight: Number.NaN }])).toThrow(
      /terms\[0\]\.weight must be a finite number/,
    );
  });
});

describe('lengthPenalty', () => {
  it('penalises tokens beyond the offset, from lengths, token rows or a tokenizer', async () => {
    const fromRows = lengthPenalty({ coef: 0.1, offset: 1 });
    const s1 = await fromRows.score([[1], [1]], [[2, 3, 4], [5]]);
    expect(s1[0]).toBeCloseTo(-0.2, 6);
    expect(s1[1]).toBe(0);
    expect(Array.from(await fromRows.score(['', ''], ['a', 'b'], { responseLengths: [11, 0] }))).toEqual([
      Math.fround(-1),
      0,
    ]);
    const withTok = lengthPenalty({ coef: 1, tokenizer: wordTokenizer });
    expect(Array.from(await withTok.score(['x'], ['good and bad']))).toEqual([-3]);
    await expect(fromRows.score(['x'], ['abc'])).rejects.toThrow(/responseLengths.*or a tokenizer/);
  });

  it('validates its options', () => {
    expect(() => lengthPenalty({ coef: -1 })).toThrow(/coef must be a finite number >= 0/);
    expect(() => lengthPenalty({ coef: 1, offset: -2 })).toThrow(/offset/);
  });
});

describe('missingEosPenalty', () => {
  it('subtracts the penalty where the response did not end with EOS', async () => {
    const p = missingEosPenalty({ penalty: 1.5 });
    expect(Array.from(await p.score(['a', 'b'], ['x', 'y'], { endedWithEos: [true, false] }))).toEqual([
      0, -1.5,
    ]);
    const byId = missingEosPenalty({ penalty: 2, eosId: 7 });
    expect(Array.from(await byId.score([[1], [1], [1]], [[3, 7], [7, 3], []]))).toEqual([0, -2, -2]);
    // Explicit metadata wins over the ids.
    expect(Array.from(await byId.score([[1]], [[3]], { endedWithEos: [true] }))).toEqual([0]);
  });

  it('refuses to guess from text', async () => {
    await expect(missingEosPenalty({ penalty: 1 }).score(['a'], ['b'])).rejects.toThrow(
      /cannot tell whether response 0 ended with EOS; pass options.endedWithEos/,
    );
    await expect(missingEosPenalty({ penalty: 1 }).score([[1]], [[2]])).rejects.toThrow(
      /or create the penalty with \{ eosId \}/,
    );
    expect(() => missingEosPenalty({ penalty: Number.NaN })).toThrow(/penalty must be a finite number >= 0/);
  });
});
