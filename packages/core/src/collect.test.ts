import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { computeLogprobs, type RolloutBatch } from '@relign/rollout';
import type { RewardFunction } from '@relign/reward-model';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { collectRollout, scoreBatch, sequenceSums } from './collect.js';
import { meanKl } from './metrics.js';
import { CONFORMANCE_DEFAULTS, countLowIdsReward } from './testing/conformance.js';

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
      return Float64Array.from({ length: prompts.length }, (_x, i) => out(i));
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

  it('keeps the scores in float64, so r1 − r2 of shifted non-integer rewards is exact (docs/algorithms.md §1.10)', async () => {
    const shifted = [1e5 + 0.3, 1e5 + 0.1, 0.3, 0.1];
    const scores = await scoreBatch(recorder('tokens', (i) => shifted[i]!).fn, batch());
    expect(scores).toBeInstanceOf(Float64Array);
    expect([...scores]).toEqual(shifted);
    // float32 would give 100000.3125 − 100000.1171875 = 0.1953.
    expect(Math.abs(scores[0]! - scores[1]! - 0.2)).toBeLessThan(1e-9);
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

describe.each(TEST_BACKENDS)('collectRollout on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  const collect = async (generation: { topK?: number; topP?: number }) => {
    const policy = CausalLM.create(CONFORMANCE_DEFAULTS.model, 7);
    const reference = policy.clone({ trainable: false });
    try {
      const r = await collectRollout({
        policy,
        reference,
        prompts: CONFORMANCE_DEFAULTS.prompts,
        reward: countLowIdsReward(),
        generation: { maxNewTokens: 6, temperature: 0.8, stopTokenIds: [0], ...generation },
        responsesPerPrompt: 2,
        seed: 3,
        policyVersion: 0,
      });
      const lp = computeLogprobs(policy, r.batch);
      const full = (await lp.data()) as Float32Array;
      lp.dispose();
      return { ...r, full };
    } finally {
      policy.dispose();
      reference.dispose();
    }
  };

  it.each([
    ['topK 3', { topK: 3 }],
    ['topP 0.5', { topP: 0.5 }],
  ])(
    'with %s keeps full-vocabulary log-probs: KL to an identical reference is 0 (docs/algorithms.md §4.2)',
    async (_label, generation) => {
      const r = await collect(generation);
      expect([...r.batch.logprobs]).toEqual([...r.full]);
      expect(Math.abs(meanKl(r.batch, r.refLogprobs!))).toBeLessThan(1e-5);
      // The truncated sampler's own log-probs (what the batch used to carry) are kept aside; against the
      // full-vocabulary reference they read as a large KL (the issue measured 9.2 nats per sequence).
      expect(r.samplingLogprobs).toBeInstanceOf(Float32Array);
      const sampled = { ...r.batch, logprobs: r.samplingLogprobs! };
      expect(meanKl(sampled, r.refLogprobs!)).toBeGreaterThan(0.5);
    },
  );

  it('without top-k/top-p keeps the sampling log-probs as they are', async () => {
    const r = await collect({});
    expect(r.samplingLogprobs).toBeUndefined();
    for (let i = 0; i < r.full.length; i++)
      expect(Math.abs(r.batch.logprobs[i]! - r.full[i]!)).toBeLessThan(1e-4);
  });
});
