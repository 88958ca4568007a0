import { describe, expect, it } from 'vitest';
import type { RolloutBatch } from '@relign/rollout';
import type { RewardFunction } from '@relign/reward-model';
import { scoreBatch, sequenceSums } from './collect.js';

/** Two prompts × two responses; row 1 and row 2 ended with the stop token 0. */
function batch(): RolloutBatch {
  return {
    batchSize: 4,
    responsesPerPrompt: 2,
    promptWidth: 3,
    responseWidth: 3,
    promptTokens: Int32Array.from([0, 5, 6, 0, 5, 6, 7, 8, 9, 7, 8, 9]),
    promptLengths: Int32Array.from([2, 2, 3, 3]),
    responseTokens: Int32Array.from([1, 2, 3, 4, 0, 0, 0, 0, 0, 2, 2, 0]),
    responseLengths: Int32Array.from([3, 2, 1, 3]),
    logprobs: Float32Array.from([-1, -2, -3, -0.5, -0.25, 0, -4, 0, 0, -1, -1, -1]),
    endedWithEos: Uint8Array.from([0, 1, 1, 0]),
    truncated: Uint8Array.from([1, 0, 0, 1]),
    groupIds: Int32Array.from([0, 0, 1, 1]),
    options: {
      maxNewTokens: 3,
      temperature: 1,
      topK: 0,
      topP: 1,
      stopTokenIds: [0],
      responsesPerPrompt: 2,
      seed: 1,
      padTokenId: 0,
    },
    policyVersion: 0,
  };
}

function recorder(kind: 'text' | 'tokens' | 'any', out: (i: number) => number = () => 1) {
  const calls: { prompts: unknown[]; responses: unknown[]; options: unknown }[] = [];
  const fn: RewardFunction = {
    name: 'rec',
    inputKind: kind,
    score: async (prompts, responses, options) => {
      calls.push({
        prompts: [...prompts].map((p) => (typeof p === 'string' ? p : [...p])),
        responses: [...responses].map((r) => (typeof r === 'string' ? r : [...r])),
        options,
      });
      return Float32Array.from({ length: prompts.length }, (_x, i) => out(i));
    },
  };
  return { fn, calls };
}

describe('scoreBatch', () => {
  it('passes unpadded prompts and responses (stop token kept) with per-row metadata', async () => {
    const { fn, calls } = recorder('tokens', (i) => i * 10);
    const scores = await scoreBatch(fn, batch());
    expect([...scores]).toEqual([0, 10, 20, 30]);
    expect(calls[0]!.prompts).toEqual([
      [5, 6],
      [5, 6],
      [7, 8, 9],
      [7, 8, 9],
    ]);
    expect(calls[0]!.responses).toEqual([[1, 2, 3], [4, 0], [0], [2, 2, 0]]);
    expect(calls[0]!.options).toEqual({
      endedWithEos: [false, true, true, false],
      responseLengths: [3, 2, 1, 3],
    });
  });

  it('gives text functions the known prompt texts and decoded responses without the stop token', async () => {
    const { fn, calls } = recorder('text');
    const tokenizer = { decode: (ids: ArrayLike<number>) => Array.from(ids, (i) => `t${i}`).join(' ') };
    await scoreBatch(fn, batch(), { tokenizer, promptTexts: ['first', 'second'] });
    expect(calls[0]!.prompts).toEqual(['first', 'first', 'second', 'second']);
    expect(calls[0]!.responses).toEqual(['t1 t2 t3', 't4', '', 't2 t2 t0']);
    // Without texts, prompts are decoded.
    await scoreBatch(fn, batch(), { tokenizer });
    expect(calls[1]!.prompts).toEqual(['t5 t6', 't5 t6', 't7 t8 t9', 't7 t8 t9']);
  });

  it('rejects non-finite scores naming the row and wrong counts', async () => {
    await expect(scoreBatch(recorder('tokens', (i) => (i === 2 ? Infinity : 0)).fn, batch())).rejects.toThrow(
      /non-finite score \(Infinity\) for row 2 \(prompt 1 of the iteration, response 0\)/,
    );
    const short: RewardFunction = {
      name: 'short',
      inputKind: 'tokens',
      score: async () => new Float32Array(3),
    };
    await expect(scoreBatch(short, batch())).rejects.toThrow('returned 3 scores for 4 responses');
  });
});

describe('sequenceSums', () => {
  it('sums each row over its valid tokens only', () => {
    expect([...sequenceSums(batch().logprobs, batch())]).toEqual([-6, -0.75, -4, -3]);
  });
});
