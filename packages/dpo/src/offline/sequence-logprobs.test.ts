import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { responseLengths, sequenceLogprobSums } from './sequence-logprobs.js';
import { example, TINY_MODEL } from './test-fixtures.js';

describe.each(TEST_BACKENDS)('sequenceLogprobSums on %s', (backend) => {
  let model: CausalLM;
  beforeAll(async () => {
    await useBackend(backend);
    model = CausalLM.create(TINY_MODEL, 3);
  });
  afterAll(() => model.dispose());

  const examples = [example([12, 13, 14], [1, 2]), example([20], [7, 8, 9, 3]), example([30, 31], [5])];

  it('sums log p(response tokens + EOS | prefix) per example, padding and batching invariant', async () => {
    // By hand: each example alone (no padding), log-softmax of the logits at position t−1 for token t.
    const expected = examples.map((ex) =>
      tf.tidy(() => {
        const { logits } = model.forward(tf.tensor2d(ex.ids, [1, ex.length], 'int32'));
        const lp = tf.logSoftmax(logits).arraySync() as number[][][];
        let s = 0;
        for (let t = ex.promptLength; t < ex.length; t++) s += lp[0]![t - 1]![ex.ids[t]!]!;
        return s;
      }),
    );
    for (const batchSize of [1, 2, 3]) {
      const sums = await sequenceLogprobSums(model, examples, { padId: 0, batchSize });
      expected.forEach((e, i) => expect(sums[i]).toBeCloseTo(e, 4));
    }
    expect(Array.from(responseLengths(examples))).toEqual([3, 5, 2]);
    // A prompt-free example (promptLength 0): token 0 has no prefix, so only tokens 1.. count.
    expect(Array.from(responseLengths([example([], [4, 5])]))).toEqual([2]);
  });

  it('leaks no tensors', async () => {
    await assertNoLeaks(() => sequenceLogprobSums(model, examples, { padId: 0, batchSize: 2 }), {
      label: 'sequenceLogprobSums',
    });
  });
});
