import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { tokenRewards } from './token-rewards.js';
import { gae } from './gae.js';
import { whitenAdvantages } from './whiten.js';

const close = (actual: ArrayLike<number>, expected: number[], tol = 1e-5) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) =>
    expect(Math.abs(actual[i]! - e), `index ${i}: ${actual[i]} vs ${e}`).toBeLessThan(tol),
  );
};

describe.each(TEST_BACKENDS)('tokenRewards on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('T7: k1 penalty and the score on the last token; GAE of the result matches the vector', async () => {
    const logprobs = tf.tensor2d([[-1.2, -0.8, -2.0, -0.5]]);
    const refLogprobs = tf.tensor2d([[-1.0, -1.0, -1.5, -0.7]]);
    const scores = tf.tensor1d([1]);
    const mask = tf.ones([1, 4]) as tf.Tensor2D;
    const { rewards, kl } = tokenRewards({ logprobs, refLogprobs, scores, mask }, { klCoef: 0.1 });
    close(kl.dataSync(), [-0.2, 0.2, -0.5, 0.2]);
    close(rewards.dataSync(), [0.02, -0.02, 0.05, 0.98]);
    const v = tf.tensor2d([[0.5, 0.4, 0.3, 0.2]]);
    const { advantages, returns } = await gae(rewards, v, mask, { gamma: 1, lambda: 0.95 });
    close(advantages.dataSync(), [0.429627, 0.53645, 0.691, 0.78]);
    close(returns.dataSync(), [0.929627, 0.93645, 0.991, 0.98]);
    tf.dispose([logprobs, refLogprobs, scores, mask, rewards, kl, v, advantages, returns]);
  });

  it('T8: with right padding the score goes to index 2 and padding (even NaN log-probs) gets 0', async () => {
    const logprobs = tf.tensor2d([[-1.2, -0.8, -2.0, NaN, 5]]);
    const refLogprobs = tf.tensor2d([[-1.0, -1.0, -1.5, 3, -Infinity]]);
    const scores = tf.tensor1d([1]);
    const mask = tf.tensor2d([[1, 1, 1, 0, 0]]);
    const { rewards, kl } = tokenRewards({ logprobs, refLogprobs, scores, mask }, { klCoef: 0.1 });
    close(rewards.dataSync(), [0.02, -0.02, 1.05, 0, 0]);
    close(kl.dataSync(), [-0.2, 0.2, -0.5, 0, 0]);
    tf.dispose([logprobs, refLogprobs, scores, mask, rewards, kl]);
  });

  it('T9: Convention B (TRL HEAD) is expressible: mask extended one past EOS for rewards/values, whitening over the real tokens', async () => {
    // Padded log-probs are INVALID_LOGPROB = 1.0 for both models, so index 3 carries zero KL and the score.
    const logprobs = tf.tensor2d([[-1.2, -0.8, -2.0, 1.0, 1.0]]);
    const refLogprobs = tf.tensor2d([[-1.0, -1.0, -1.5, 1.0, 1.0]]);
    const plusOne = tf.tensor2d([[1, 1, 1, 1, 0]]);
    const real = tf.tensor2d([[1, 1, 1, 0, 0]]);
    const { rewards, kl } = tokenRewards(
      { logprobs, refLogprobs, scores: tf.tensor1d([1]), mask: plusOne },
      { klCoef: 0.1 },
    );
    close(rewards.dataSync(), [0.02, -0.02, 0.05, 1.0, 0]);
    const v = tf.tensor2d([[0.5, 0.4, 0.3, 0.25, 99]]);
    const { advantages, returns } = await gae(rewards, v, plusOne, { gamma: 1, lambda: 0.95 });
    close(advantages.dataSync(), [0.449031, 0.556875, 0.7125, 0.75, 0]);
    close(returns.dataSync(), [0.949031, 0.956875, 1.0125, 1.0, 0]);
    const w = whitenAdvantages(advantages, real, { unbiased: true, eps: 1e-8 });
    close(w.dataSync(), [-0.93444, -0.120246, 1.054686, 0, 0]);
    tf.dispose([logprobs, refLogprobs, plusOne, real, rewards, kl, v, advantages, returns, w]);
  });

  it('the score lands on the last real token for every padding layout (right, left, none, holes, length 1, empty row)', () => {
    const T = 5;
    const masks = [
      [1, 1, 1, 0, 0], // right padding
      [0, 0, 1, 1, 1], // left padding
      [1, 1, 1, 1, 1], // none
      [1, 0, 1, 1, 0], // a hole
      [1, 0, 0, 0, 0], // one token
      [0, 0, 0, 0, 1], // one token at the end
      [0, 0, 0, 0, 0], // nothing valid: no reward
    ];
    const B = masks.length;
    const scores = Array.from({ length: B }, (_, b) => 10 + b);
    const lp = tf.zeros([B, T]) as tf.Tensor2D; // zero KL: rewards are the score alone
    const { rewards, kl } = tokenRewards(
      {
        logprobs: lp,
        refLogprobs: lp,
        scores: tf.tensor1d(scores),
        mask: tf.tensor2d(masks, undefined, 'int32'),
      },
      { klCoef: 0.3 },
    );
    const r = rewards.arraySync();
    masks.forEach((m, b) => {
      const last = m.lastIndexOf(1);
      for (let t = 0; t < T; t++) expect(r[b]![t], `row ${b} col ${t}`).toBe(t === last ? scores[b] : 0);
    });
    tf.dispose([lp, rewards, kl]);
  });

  it('the advantages of a padded row equal those of the unpadded row in every layout', async () => {
    const seq = { lp: [-1.2, -0.8, -2.0], ref: [-1.0, -1.0, -1.5], v: [0.5, 0.4, 0.3] };
    const layouts = [
      [0, 1, 2],
      [2, 3, 4],
      [1, 2, 3],
    ];
    const build = (fill: number, src: number[]) =>
      layouts.map((cols) => {
        const row = Array(5).fill(fill);
        cols.forEach((c, i) => (row[c] = src[i]));
        return row;
      });
    const mask = tf.tensor2d(layouts.map((cols) => [0, 1, 2, 3, 4].map((c) => (cols.includes(c) ? 1 : 0))));
    const { rewards } = tokenRewards(
      {
        logprobs: tf.tensor2d(build(-3, seq.lp)),
        refLogprobs: tf.tensor2d(build(-7, seq.ref)),
        scores: tf.tensor1d([1, 1, 1]),
        mask,
      },
      { klCoef: 0.1 },
    );
    const { advantages } = await gae(rewards, tf.tensor2d(build(42, seq.v)), mask, {
      gamma: 1,
      lambda: 0.95,
    });
    const a = advantages.arraySync();
    layouts.forEach((cols, b) =>
      close(
        cols.map((c) => a[b]![c]!),
        [0.482875, 0.5925, 0.75],
      ),
    );
    tf.dispose([mask, rewards, advantages]);
  });

  it('uses the chosen estimator (T6: k2, k3)', () => {
    const logprobs = tf.tensor2d([[-1.0, -0.5, -2.0]]);
    const refLogprobs = tf.tensor2d([[-1.5, -0.5, -1.0]]);
    const scores = tf.tensor1d([0]);
    const mask = tf.ones([1, 3]) as tf.Tensor2D;
    const k2 = tokenRewards({ logprobs, refLogprobs, scores, mask }, { klCoef: 2, estimator: 'k2' });
    close(k2.kl.dataSync(), [0.125, 0, 0.5]);
    close(k2.rewards.dataSync(), [-0.25, 0, -1]);
    const k3 = tokenRewards({ logprobs, refLogprobs, scores, mask }, { klCoef: 1, estimator: 'k3' });
    close(k3.kl.dataSync(), [0.106531, 0, 0.718282]);
    tf.dispose([logprobs, refLogprobs, scores, mask, k2.kl, k2.rewards, k3.kl, k3.rewards]);
  });

  it('rejects bad input naming the argument, and does not leak', async () => {
    const lp = tf.zeros([2, 3]) as tf.Tensor2D;
    const mask = tf.ones([2, 3]) as tf.Tensor2D;
    const scores = tf.tensor1d([1, 2]);
    expect(() =>
      tokenRewards({ logprobs: lp, refLogprobs: lp, scores: tf.tensor1d([1]), mask }, { klCoef: 0.1 }),
    ).toThrow(/tokenRewards: `scores` must have shape \[2\]/);
    expect(() => tokenRewards({ logprobs: lp, refLogprobs: lp, scores, mask }, { klCoef: -1 })).toThrow(
      /options.klCoef/,
    );
    expect(() =>
      tokenRewards({ logprobs: lp, refLogprobs: lp, scores, mask }, { klCoef: 1, estimator: 'k4' as never }),
    ).toThrow(/'k1', 'k2' or 'k3'/);
    expect(() => tokenRewards({ logprobs: lp, scores, mask } as never, { klCoef: 1 })).toThrow(
      /`refLogprobs` must be a tf.Tensor/,
    );
    await assertNoLeaks(
      () => tokenRewards({ logprobs: lp, refLogprobs: lp, scores, mask }, { klCoef: 0.1 }),
      { label: 'tokenRewards' },
    );
    tf.dispose([lp, mask, scores]);
  });
});
