import { describe, expect, it } from 'vitest';
import { batchRewardFunction, checkScores, rewardFunction, type RowInfo } from './reward-function.js';
import { weightedSum } from './compose.js';
import { afinnReward, wordTokenizer } from './test-fixtures.js';

describe('rewardFunction (per row)', () => {
  it('scores text rows in order and passes per-row metadata', async () => {
    const seen: RowInfo[] = [];
    const fn = rewardFunction(
      (p: string, r: string, info) => {
        seen.push(info);
        return p.length * 10 + r.length;
      },
      { name: 'len' },
    );
    expect(fn.inputKind).toBe('text');
    const s = await fn.score(['ab', 'c'], ['xyz', ''], {
      endedWithEos: [true, false],
      responseLengths: [3, 0],
    });
    expect(Array.from(s)).toEqual([23, 10]);
    expect(seen).toEqual([
      { index: 0, endedWithEos: true, responseLength: 3 },
      { index: 1, endedWithEos: false, responseLength: 0 },
    ]);
  });

  it('awaits async scorers', async () => {
    const fn = rewardFunction(async (_p: string, r: string) => {
      await new Promise((res) => setTimeout(res, r.length));
      return r.length;
    });
    expect(Array.from(await fn.score(['', ''], ['aaaa', 'b']))).toEqual([4, 1]);
  });

  it('decodes token rows for a text scorer with its tokenizer, and says when it has none', async () => {
    const afinn = afinnReward();
    const ids = [wordTokenizer.encode('the food was'), wordTokenizer.encode('the food was')];
    const responses = [wordTokenizer.encode('good and great'), wordTokenizer.encode('awful')];
    expect(Array.from(await afinn.score(ids, responses))).toEqual([6, -3]);
    expect(Array.from(await afinn.score(['the food was', 'x'], ['good and great', 'awful']))).toEqual([
      6, -3,
    ]);
    const noTok = rewardFunction((_p: string, r: string) => r.length, { name: 'plain' });
    await expect(noTok.score([[1]], [[2]])).rejects.toThrow(
      /"plain".*scores text but was given token ids.*tokenizer/,
    );
  });

  it('encodes text for a token scorer', async () => {
    const count = rewardFunction(
      (_p: readonly number[] | Int32Array, r: readonly number[] | Int32Array) => r.length,
      {
        inputKind: 'tokens',
        tokenizer: wordTokenizer,
        name: 'count',
      },
    );
    expect(Array.from(await count.score(['the'], ['good good bad']))).toEqual([3]);
    const bare = rewardFunction(
      (_p: readonly number[] | Int32Array, r: readonly number[] | Int32Array) => r.length,
      {
        inputKind: 'tokens',
      },
    );
    await expect(bare.score(['a'], ['b'])).rejects.toThrow(/scores token ids but was given strings/);
  });

  it('rejects NaN and infinite scores naming the function and row', async () => {
    const fn = rewardFunction(
      (_p: string, r: string) => (r === 'bad' ? Number.NaN : r === 'inf' ? 1e39 : 1),
      {
        name: 'flaky',
      },
    );
    await expect(fn.score(['', '', ''], ['ok', 'bad', 'ok'])).rejects.toThrow(
      /"flaky" returned a non-finite score for row 1 \(NaN\)/,
    );
    // 1e39 is finite in float64 but not in float32.
    await expect(fn.score(['', ''], ['inf', 'bad'])).rejects.toThrow(/row 0 \(1e\+39\) and 1 other rows/);
  });

  it('validates the batch', async () => {
    const fn = rewardFunction(() => 0, { name: 'zero' });
    await expect(fn.score(['a', 'b'], ['c'])).rejects.toThrow(/prompts has 2 rows but responses has 1/);
    await expect(fn.score(['a', [1] as unknown as string], ['c', 'd'])).rejects.toThrow(
      /mixes strings and token arrays/,
    );
    await expect(fn.score([[1]], ['c'])).rejects.toThrow(/prompts are tokens but responses are text/);
    await expect(fn.score([[1, -2]], [[3]])).rejects.toThrow(/prompts\[0\]\[1\] must be a token id/);
    await expect(fn.score(['a'], ['b'], { endedWithEos: [true, false] })).rejects.toThrow(
      /endedWithEos must be an array of 1 booleans/,
    );
    expect((await fn.score([], [])).length).toBe(0);
    expect(() => rewardFunction(5 as unknown as () => number)).toThrow(/fn must be a function/);
  });
});

describe('batchRewardFunction', () => {
  it('calls the scorer once per batch with the options', async () => {
    const calls: unknown[] = [];
    const fn = batchRewardFunction(
      (prompts: string[], responses: string[], options) => {
        calls.push({ prompts, responses, options });
        return responses.map((r) => r.length);
      },
      { name: 'lens' },
    );
    expect(Array.from(await fn.score(['p', 'q'], ['aa', 'b'], { endedWithEos: [true, true] }))).toEqual([
      2, 1,
    ]);
    expect(calls).toEqual([
      { prompts: ['p', 'q'], responses: ['aa', 'b'], options: { endedWithEos: [true, true] } },
    ]);
  });

  it('checks the number and finiteness of the returned scores', async () => {
    const short = batchRewardFunction(() => [1], { name: 'short' });
    await expect(short.score(['a', 'b'], ['c', 'd'])).rejects.toThrow(
      /"short" returned 1 scores for a batch of 2 rows/,
    );
    const inf = batchRewardFunction(async () => new Float64Array([0, Number.NEGATIVE_INFINITY]), {
      name: 'inf',
    });
    await expect(inf.score(['a', 'b'], ['c', 'd'])).rejects.toThrow(/row 1 \(-Infinity\)/);
  });
});

describe('prompt records (ScoreOptions.records)', () => {
  interface MathRecord {
    prompt: string;
    answer: string;
  }
  const records: MathRecord[] = [
    { prompt: '2+3=', answer: '5' },
    { prompt: '2+3=', answer: '5' },
    { prompt: '4+4=', answer: '8' },
    { prompt: '4+4=', answer: '8' },
  ];

  it('a checkable per-row reward reads info.record of its own row', async () => {
    const seen: (MathRecord | undefined)[] = [];
    const exact = rewardFunction<MathRecord>((_p, response, { record }) => {
      seen.push(record);
      return response.trim() === record?.answer ? 1 : 0;
    });
    const scores = await exact.score(
      records.map((r) => r.prompt),
      [' 5', '6', '8', ' 5'],
      { records },
    );
    expect(Array.from(scores)).toEqual([1, 0, 1, 0]);
    expect(seen).toEqual(records);
    expect(seen[2]).toBe(records[2]); // the caller's objects, not copies
    // Without records (a direct call), info.record is absent.
    await exact.score(['a'], ['b']);
    expect(seen[4]).toBeUndefined();
  });

  it('reaches batch functions and every term of a weighted sum; a wrong count is an error naming the field', async () => {
    let batchSeen: readonly MathRecord[] | undefined;
    const batch = batchRewardFunction<MathRecord>((_p, responses, options) => {
      batchSeen = options.records;
      return responses.map(() => 0);
    });
    const perRow = rewardFunction<MathRecord>((_p, r, { record }) => (r === record?.answer ? 1 : 0));
    const sum = weightedSum([{ fn: batch }, { fn: perRow, weight: 2 }]);
    const total = await sum.score(
      records.map((r) => r.prompt),
      ['5', 'x', '8', 'y'],
      { records },
    );
    expect(Array.from(total)).toEqual([2, 0, 2, 0]);
    expect(batchSeen).toBe(records);
    await expect(perRow.score(['a', 'b'], ['c', 'd'], { records: [records[0]!] })).rejects.toThrow(
      'options.records must be an array of 2 prompt records (one per row)',
    );
  });
});

describe('checkScores', () => {
  it('keeps the numbers in float64 (exact differences, docs/algorithms.md §1.10) and rejects non-numbers', () => {
    expect(checkScores([0.1, 2], 2, 'x')).toEqual(new Float64Array([0.1, 2]));
    const [a, b] = checkScores([1e5 + 0.3, 1e5 + 0.1], 2, 'x');
    expect(Math.abs(a! - b! - 0.2)).toBeLessThan(1e-9); // float32: 0.1953
    expect(() => checkScores([1e39], 1, 'x')).toThrow(/non-finite score for row 0 \(1e\+39\)/);
    expect(() => checkScores(['1' as unknown as number], 1, 'x')).toThrow(/returned string for row 0/);
    expect(() => checkScores(null as unknown as number[], 1, 'x')).toThrow(/returned null/);
  });
});
