import * as tf from '@tensorflow/tfjs-core';
import { ScalarHead, type CausalLM } from '@relign/lm';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { responseMask, type RolloutBatch } from './batch.js';
import { computeLogprobs, computeValues, truncationSupport } from './scoring.js';
import { logSoftmaxAt, rowReference, testModel } from './test-helpers.js';

/**
 * A hand-made batch (not from generate): 2 groups of 2, ragged prompts (3 and 1 tokens, Tp = 3) and
 * ragged responses (lengths 4, 2, 1, 3; Tr = 4), pad id 9.
 */
function handBatch(): RolloutBatch {
  const P = 9;
  return {
    batchSize: 4,
    responsesPerPrompt: 2,
    promptWidth: 3,
    responseWidth: 4,
    promptTokens: Int32Array.from([5, 6, 7, 5, 6, 7, P, P, 8, P, P, 8]),
    promptLengths: Int32Array.from([3, 3, 1, 1]),
    responseTokens: Int32Array.from([10, 11, 12, 13, 20, 21, P, P, 30, P, P, P, 40, 41, 42, P]),
    responseLengths: Int32Array.from([4, 2, 1, 3]),
    logprobs: new Float32Array(16),
    endedWithEos: Uint8Array.from([0, 1, 1, 0]),
    truncated: Uint8Array.from([1, 0, 0, 1]),
    groupIds: Int32Array.from([0, 0, 1, 1]),
    options: {
      maxNewTokens: 4,
      temperature: 0.8,
      topK: 0,
      topP: 1,
      stopTokenIds: [21, 30],
      responsesPerPrompt: 2,
      seed: 0,
      padTokenId: P,
    },
    policyVersion: 0,
  };
}

describe.each(TEST_BACKENDS)('scoring on %s', (backend) => {
  let model: CausalLM;
  let head: ScalarHead;
  beforeAll(async () => {
    await useBackend(backend);
    model = testModel(8);
    head = ScalarHead.create(16, { seed: 2 });
  });
  afterAll(() => {
    model.dispose();
    head.dispose();
  });

  it('computeLogprobs: log softmax(z/τ) at each response token from the position before it, 0 at padding', () => {
    const batch = handBatch();
    for (const tau of [0.8, 1.3]) {
      const lp = computeLogprobs(model, batch, { temperature: tau });
      expect(lp.shape).toEqual([4, 4]);
      const got = lp.dataSync();
      lp.dispose();
      for (let b = 0; b < 4; b++) {
        const ref = rowReference(model, batch, b);
        for (let t = 0; t < 4; t++) {
          if (t < batch.responseLengths[b]!) {
            const want = logSoftmaxAt(ref.logits[t]!, batch.responseTokens[b * 4 + t]!, tau);
            expect(Math.abs(got[b * 4 + t]! - want)).toBeLessThan(2e-5);
          } else {
            expect(Math.abs(got[b * 4 + t]!)).toBe(0);
          }
        }
      }
    }
  });

  it('computeLogprobs defaults to the batch temperature and is differentiable (both truncation modes)', async () => {
    const batch = handBatch();
    const a = computeLogprobs(model, batch);
    const b = computeLogprobs(model, batch, { temperature: 0.8 });
    expect(a.dataSync()).toEqual(b.dataSync());
    tf.dispose([a, b]);
    const vars = [...model.trainableVariables().values()];
    const truncated = { ...batch, options: { ...batch.options, topK: 6 } };
    for (const [bt, truncation] of [
      [batch, 'none'],
      [truncated, 'as-sampled'],
    ] as const) {
      const support = truncation === 'as-sampled' ? await truncationSupport(model, bt) : undefined;
      const { value, grads } = tf.variableGrads(
        () =>
          tf.sum(computeLogprobs(model, bt, { truncation, ...(support ? { support } : {}) })) as tf.Scalar,
        vars,
      );
      const norm = tf.tidy(
        () => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]!,
      );
      expect(Number.isFinite(norm) && norm > 0).toBe(true);
      tf.dispose([value, ...Object.values(grads)]);
    }
  });

  it("'as-sampled' renormalises over the recomputed top-k support", async () => {
    const batch = { ...handBatch(), options: { ...handBatch().options, topK: 6 } };
    const support = await truncationSupport(model, batch);
    const lp = computeLogprobs(model, batch, { truncation: 'as-sampled', support });
    const got = lp.dataSync();
    lp.dispose();
    for (let b = 0; b < 4; b++) {
      rowReference(model, batch, b).logits.forEach((z, t) => {
        const y = batch.responseTokens[b * 4 + t]!;
        const top = [...z.keys()].sort((i, j) => z[j]! - z[i]! || i - j).slice(0, 6);
        if (!top.includes(y)) top.push(y); // the sampled token is always in the support
        const sub = Float32Array.from(top, (i) => z[i]!);
        const want = logSoftmaxAt(sub, top.indexOf(y), 0.8);
        expect(Math.abs(got[b * 4 + t]! - want)).toBeLessThan(2e-5);
      });
    }
  });

  it('computeValues: the head at the position that predicts each response token, 0 at padding', () => {
    const batch = handBatch();
    const v = computeValues(model, head, batch);
    expect(v.shape).toEqual([4, 4]);
    const got = v.dataSync();
    v.dispose();
    const w = head.weight.dataSync();
    const bias = head.bias!.dataSync()[0]!;
    for (let b = 0; b < 4; b++) {
      const ref = rowReference(model, batch, b);
      for (let t = 0; t < 4; t++) {
        if (t < batch.responseLengths[b]!) {
          const h = ref.hidden[t]!;
          const want = h.reduce((acc, x, i) => acc + x * w[i]!, bias);
          expect(Math.abs(got[b * 4 + t]! - want)).toBeLessThan(2e-5);
        } else {
          expect(Math.abs(got[b * 4 + t]!)).toBe(0);
        }
      }
    }
  });

  it('responseMask marks valid response tokens', () => {
    const m = responseMask(handBatch());
    expect([...m.dataSync()]).toEqual([1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0]);
    m.dispose();
  });

  it('leaks no tensors', async () => {
    const batch = handBatch();
    await assertNoLeaks(() => [computeLogprobs(model, batch), computeValues(model, head, batch)], {
      label: 'computeLogprobs/computeValues',
    });
  });

  it('rejects invalid batches and options with errors naming the field', async () => {
    const bad = (patch: Partial<RolloutBatch>) => ({ ...handBatch(), ...patch });
    expect(() => computeLogprobs(model, bad({ responseLengths: Int32Array.from([5, 2, 1, 3]) }))).toThrow(
      /batch\.responseLengths\[0\] = 5 is outside \[1, responseWidth = 4\] \(length beyond the token array\)/,
    );
    expect(() => computeLogprobs(model, bad({ promptLengths: Int32Array.from([3, 3, 0, 1]) }))).toThrow(
      /batch\.promptLengths\[2\]/,
    );
    expect(() => computeLogprobs(model, bad({ logprobs: new Float32Array(15) }))).toThrow(
      /batch\.logprobs has 15 entries/,
    );
    expect(() => computeLogprobs(model, bad({ groupIds: Int32Array.from([0, 1, 1, 1]) }))).toThrow(
      /batch\.groupIds\[1\]/,
    );
    expect(() => computeLogprobs(model, bad({ responseTokens: new Int32Array(16).fill(48) }))).toThrow(
      /batch\.responseTokens\[0, 0\] = 48 is not a token id in \[0, 48\)/,
    );
    expect(() => computeLogprobs(model, handBatch(), { temperature: 0 })).toThrow(/truncation: 'as-sampled'/);
    expect(() => computeLogprobs(model, handBatch(), { truncation: 'top' as 'none' })).toThrow(
      /options\.truncation/,
    );
    // 'as-sampled' needs the support computed beforehand (asynchronously), for this batch and temperature.
    const topK = { ...handBatch(), options: { ...handBatch().options, topK: 6 } };
    expect(() => computeLogprobs(model, topK, { truncation: 'as-sampled' })).toThrow(
      /needs options\.support: pass `support: await truncationSupport/,
    );
    const support = await truncationSupport(model, topK);
    expect(() =>
      computeLogprobs(model, topK, { truncation: 'as-sampled', support, temperature: 0.5 }),
    ).toThrow(/support was computed at temperature 0\.8, this pass uses 0\.5/);
    const short = { ...support, responseWidth: 3 };
    expect(() => computeLogprobs(model, topK, { truncation: 'as-sampled', support: short })).toThrow(
      /options\.support is for \[B, Tr, V\] = \[4, 3, 48\]/,
    );
    const other = ScalarHead.create(8);
    expect(() => computeValues(model, other, handBatch())).toThrow(
      /hiddenSize 8 differs from the model's n_embd 16/,
    );
    other.dispose();
  });
});
