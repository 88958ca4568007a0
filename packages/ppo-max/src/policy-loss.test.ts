import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { ppoPolicyLoss } from './policy-loss.js';

const close = (actual: ArrayLike<number>, expected: number[], tol = 1e-5) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) =>
    expect(Math.abs(actual[i]! - e), `index ${i}: ${actual[i]} vs ${e}`).toBeLessThan(tol),
  );
};
const value = (t: tf.Tensor) => t.dataSync()[0]!;

// T3: the OpenRLHF test tensors (docs/algorithms.md §5.1).
const T3 = {
  logp: [
    [-0.2, -0.4, -0.1],
    [-0.7, -0.3, -0.2],
    [-0.6, -0.1, -0.5],
  ],
  delta: [
    [0.03, -0.04, 0.01],
    [0.02, 0.05, -0.03],
    [0.04, 0, -0.02],
  ],
  adv: [
    [1, -0.5, 0],
    [0.3, -1.2, 0.5],
    [1.5, 0, -0.7],
  ],
  mask: [
    [1, 1, 0],
    [1, 1, 1],
    [1, 0, 1],
  ],
};
const t3Old = T3.logp.map((row, i) => row.map((v, j) => v - T3.delta[i]![j]!));

describe.each(TEST_BACKENDS)('ppoPolicyLoss on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('T3: token-mean loss −0.136414, no clipping; approx KL Σ m((ρ−1) − log ρ)/n', () => {
    const r = tf.tidy(() =>
      ppoPolicyLoss(
        {
          logprobs: tf.tensor2d(T3.logp),
          oldLogprobs: tf.tensor2d(t3Old),
          advantages: tf.tensor2d(T3.adv),
          mask: tf.tensor2d(T3.mask),
        },
        { clipRange: 0.2 },
      ),
    );
    expect(value(r.loss)).toBeCloseTo(-0.136414, 5);
    expect(value(r.clipFrac)).toBe(0);
    // Computed by hand from the formula (numpy, float64): 0.000595913.
    expect(value(r.approxKl)).toBeCloseTo(0.000595913, 7);
    tf.dispose([r.loss, r.clipFrac, r.approxKl]);
  });

  it('T3 split into micro-batches {0,1} / {2} with the minibatch token count sums to the same loss and gradient', () => {
    const full = tf.tensor2d(T3.logp);
    const part = (rows: number[]) => ({
      oldLogprobs: tf.tensor2d(rows.map((r) => t3Old[r]!)),
      advantages: tf.tensor2d(rows.map((r) => T3.adv[r]!)),
      mask: tf.tensor2d(rows.map((r) => T3.mask[r]!)),
    });
    const whole = part([0, 1, 2]);
    const g1 = tf.grad((lp: tf.Tensor) => ppoPolicyLoss({ logprobs: lp, ...whole }, { clipRange: 0.2 }).loss);
    const gradFull = g1(full);
    const a = part([0, 1]);
    const b = part([2]);
    const split = (lp: tf.Tensor) => {
      const [top, bottom] = tf.split(lp, [2, 1], 0);
      return tf.add(
        ppoPolicyLoss({ logprobs: top!, ...a }, { clipRange: 0.2, tokenCount: 7 }).loss,
        ppoPolicyLoss({ logprobs: bottom!, ...b }, { clipRange: 0.2, tokenCount: 7 }).loss,
      ) as tf.Scalar;
    };
    expect(value(tf.tidy(() => split(full)))).toBeCloseTo(-0.136414, 5);
    const gradSplit = tf.grad(split)(full);
    close(gradSplit.dataSync(), Array.from(gradFull.dataSync()), 1e-7);
    // Per-token gradient where nothing is clipped: −Â ρ / n at valid tokens, 0 at padding.
    const expected = T3.logp.flatMap((row, i) =>
      row.map((_, j) => (T3.mask[i]![j] ? (-T3.adv[i]![j]! * Math.exp(T3.delta[i]![j]!)) / 7 : 0)),
    );
    close(gradFull.dataSync(), expected, 1e-6);
    tf.dispose([
      full,
      gradFull,
      gradSplit,
      ...Object.values(whole),
      ...Object.values(a),
      ...Object.values(b),
    ]);
  });

  it('T10: per-token losses [−1.2, −0.606531, 1.648721, 0.8] and zero gradient on the clipped tokens', () => {
    const lp = tf.zeros([1, 4]);
    const old = tf.tensor2d([[-0.5, 0.5, -0.5, 0.5]]);
    const adv = tf.tensor2d([[1, 1, -1, -1]]);
    const perToken: number[] = [];
    const clipped: number[] = [];
    for (let t = 0; t < 4; t++) {
      const mask = tf.oneHot(tf.tensor1d([t], 'int32'), 4);
      const r = ppoPolicyLoss({ logprobs: lp, oldLogprobs: old, advantages: adv, mask }, { clipRange: 0.2 });
      perToken.push(value(r.loss));
      clipped.push(value(r.clipFrac));
      tf.dispose([mask, r.loss, r.clipFrac, r.approxKl]);
    }
    close(perToken, [-1.2, -0.606531, 1.648721, 0.8]);
    expect(clipped).toEqual([1, 0, 0, 1]);
    const mask = tf.ones([1, 4]);
    const grad = tf.grad(
      (x: tf.Tensor) =>
        ppoPolicyLoss({ logprobs: x, oldLogprobs: old, advantages: adv, mask }, { clipRange: 0.2 }).loss,
    )(lp);
    close(grad.dataSync(), [0, -0.606531 / 4, 1.648721 / 4, 0]);
    const r = ppoPolicyLoss({ logprobs: lp, oldLogprobs: old, advantages: adv, mask }, { clipRange: 0.2 });
    expect(value(r.loss)).toBeCloseTo((-1.2 - 0.606531 + 1.648721 + 0.8) / 4, 5);
    expect(value(r.clipFrac)).toBeCloseTo(0.5, 6);
    // Without clipping (Infinity): −Â ρ everywhere.
    const u = ppoPolicyLoss(
      { logprobs: lp, oldLogprobs: old, advantages: adv, mask },
      { clipRange: Infinity },
    );
    expect(value(u.loss)).toBeCloseTo((-1.648721 - 0.606531 + 1.648721 + 0.606531) / 4, 5);
    expect(value(u.clipFrac)).toBe(0);
    tf.dispose([lp, old, adv, mask, grad, r.loss, r.clipFrac, r.approxKl, u.loss, u.clipFrac, u.approxKl]);
  });

  it('NaN / Inf at masked positions reach neither the loss nor the gradient', () => {
    const lp = tf.tensor2d([[-0.5, NaN, Infinity]]);
    const old = tf.tensor2d([[-0.4, 3, NaN]]);
    const adv = tf.tensor2d([[2, NaN, -Infinity]]);
    const mask = tf.tensor2d([[1, 0, 0]]);
    const grad = tf.grad(
      (x: tf.Tensor) =>
        ppoPolicyLoss({ logprobs: x, oldLogprobs: old, advantages: adv, mask }, { clipRange: 0.2 }).loss,
    )(lp);
    const g = grad.dataSync();
    expect(g[0]).toBeCloseTo(-2 * Math.exp(-0.1), 5);
    expect([g[1], g[2]]).toEqual([0, 0]);
    tf.dispose([lp, old, adv, mask, grad]);
  });

  it('rejects bad input naming the argument, and does not leak', async () => {
    const x = tf.zeros([2, 3]);
    const y = tf.zeros([2, 2]);
    expect(() =>
      ppoPolicyLoss({ logprobs: x, oldLogprobs: y, advantages: x, mask: x }, { clipRange: 0.2 }),
    ).toThrow(/ppoPolicyLoss: `oldLogprobs` must have shape \[2, 3\]/);
    expect(() =>
      ppoPolicyLoss({ logprobs: x, oldLogprobs: x, advantages: x, mask: x }, { clipRange: 0 }),
    ).toThrow(/options.clipRange/);
    expect(() =>
      ppoPolicyLoss(
        { logprobs: x, oldLogprobs: x, advantages: x, mask: x },
        { clipRange: 0.2, tokenCount: 0 },
      ),
    ).toThrow(/options.tokenCount/);
    expect(() =>
      ppoPolicyLoss({ logprobs: x, oldLogprobs: x, advantages: x, mask: x }, {
        clipRange: 0.2,
        clip: 1,
      } as never),
    ).toThrow(/unknown option `options.clip`/);
    expect(() =>
      ppoPolicyLoss(
        { logprobs: tf.zeros([2, 3], 'int32'), oldLogprobs: x, advantages: x, mask: x },
        { clipRange: 0.2 },
      ),
    ).toThrow(/`logprobs` must be float32/);
    await assertNoLeaks(
      () => ppoPolicyLoss({ logprobs: x, oldLogprobs: x, advantages: x, mask: x }, { clipRange: 0.2 }),
      {
        label: 'ppoPolicyLoss',
      },
    );
    tf.dispose([x, y]);
  });
});
