import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutBatch } from './batch.js';
import { computeLogprobs, computeLogprobsAndEntropy } from './scoring.js';
import { rowReference, testModel } from './test-helpers.js';

/** Ragged prompts (3 and 1 tokens) and responses (lengths 3, 1), pad id 9. */
function batch(temperature: number): RolloutBatch {
  const P = 9;
  return {
    batchSize: 2,
    responsesPerPrompt: 1,
    promptWidth: 3,
    responseWidth: 3,
    promptTokens: Int32Array.from([5, 6, 7, P, P, 8]),
    promptLengths: Int32Array.from([3, 1]),
    responseTokens: Int32Array.from([10, 11, 12, 30, P, P]),
    responseLengths: Int32Array.from([3, 1]),
    logprobs: new Float32Array(6),
    endedWithEos: Uint8Array.from([0, 1]),
    truncated: Uint8Array.from([1, 0]),
    groupIds: Int32Array.from([0, 1]),
    options: {
      maxNewTokens: 3,
      temperature,
      topK: 0,
      topP: 1,
      stopTokenIds: [30],
      responsesPerPrompt: 1,
      seed: 0,
      padTokenId: P,
    },
    policyVersion: 0,
  };
}

/** Entropy of softmax(z / τ) in float64. */
function entropyOf(z: Float32Array, tau: number): number {
  const max = Math.max(...z) / tau;
  let sum = 0;
  for (const v of z) sum += Math.exp(v / tau - max);
  let h = 0;
  for (const v of z) {
    const lp = v / tau - max - Math.log(sum);
    h -= Math.exp(lp) * lp;
  }
  return h;
}

describe.each(TEST_BACKENDS)('computeLogprobsAndEntropy on %s', (backend) => {
  let model: CausalLM;
  beforeAll(async () => {
    await useBackend(backend);
    model = testModel(8);
  });
  afterAll(() => model.dispose());

  it("gives computeLogprobs's log-probs and the entropy of softmax(z/τ) per token, 0 at padding", async () => {
    const b = batch(0.7);
    const { logprobs, entropy } = computeLogprobsAndEntropy(model, b);
    const reference = computeLogprobs(model, b);
    const [lp, h, ref] = await Promise.all([logprobs.data(), entropy.data(), reference.data()]);
    tf.dispose([logprobs, entropy, reference]);
    expect(Array.from(lp)).toEqual(Array.from(ref));
    for (let row = 0; row < 2; row++) {
      const logits = rowReference(model, b, row).logits;
      for (let t = 0; t < 3; t++) {
        const got = h[row * 3 + t]!;
        if (t < b.responseLengths[row]!)
          expect(Math.abs(got - entropyOf(logits[t]!, 0.7))).toBeLessThan(2e-5);
        else expect(got).toBe(0);
      }
    }
    // options.temperature overrides the batch's.
    const hot = computeLogprobsAndEntropy(model, b, { temperature: 2 });
    const h2 = await hot.entropy.data();
    tf.dispose([hot.logprobs, hot.entropy]);
    expect(h2[0]).toBeGreaterThan(h[0]!);
  });

  it('is differentiable, rejects τ = 0 naming the option, and leaks nothing', async () => {
    const b = batch(1);
    const vars = [...model.variables().values()];
    const { grads, value } = tf.variableGrads(() => {
      const { logprobs, entropy } = computeLogprobsAndEntropy(model, b);
      return tf.sum(tf.add(logprobs, entropy)) as tf.Scalar;
    }, vars as tf.Variable[]);
    const total = tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.abs(g)))));
    const [norm] = await total.data();
    tf.dispose([total, value, ...Object.values(grads)]);
    expect(norm).toBeGreaterThan(0);
    expect(() => computeLogprobsAndEntropy(model, batch(0))).toThrow(
      /computeLogprobsAndEntropy: the entropy needs a temperature > 0, got 0/,
    );
    await assertNoLeaks(() => computeLogprobsAndEntropy(model, b), { label: 'computeLogprobsAndEntropy' });
  });
});
