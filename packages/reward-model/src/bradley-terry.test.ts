import * as tf from '@tensorflow/tfjs-core';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { bradleyTerryLoss, bradleyTerryLosses, pairMetrics, softplus } from './bradley-terry.js';

// Hand-computed (float64): u = r_c − r_r = [0.5, −0.5, 0, 4]; loss_i = log(1 + e^{−u_i});
// ∂mean/∂r_c,i = −σ(−u_i)/4 = −1/(4(1 + e^{u_i})); ∂/∂r_r is its negative.
const RC = [1.0, 0.2, -0.5, 3.0];
const RR = [0.5, 0.7, -0.5, -1.0];
const PER_PAIR = [0.474076984, 0.974076984, 0.693147181, 0.018149928];
const MEAN = 0.539862769;
const GRAD_RC = [-0.094385167, -0.155614833, -0.125, -0.004496552];
// With margins m = [0, 0, 0.25, 1]: u − m = [0.5, −0.5, −0.25, 3].
const PER_PAIR_MARGIN = [0.474076984, 0.974076984, 0.82593942, 0.048587352];

describe.each(TEST_BACKENDS)('bradleyTerryLoss on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('matches hand-computed values and gradients', () => {
    const rc = tf.tensor1d(RC);
    const rr = tf.tensor1d(RR);
    const per = bradleyTerryLosses(rc, rr);
    const per2 = Array.from(per.dataSync());
    per.dispose();
    per2.forEach((v, i) => expect(v).toBeCloseTo(PER_PAIR[i]!, 5));
    const { value, grads } = tf.valueAndGrads((c: tf.Tensor, r: tf.Tensor) =>
      bradleyTerryLoss(c as tf.Tensor1D, r as tf.Tensor1D),
    )([rc, rr]);
    expect(value.dataSync()[0]).toBeCloseTo(MEAN, 6);
    const gc = Array.from(grads[0]!.dataSync());
    const gr = Array.from(grads[1]!.dataSync());
    gc.forEach((g, i) => expect(g).toBeCloseTo(GRAD_RC[i]!, 6));
    gr.forEach((g, i) => expect(g).toBeCloseTo(-GRAD_RC[i]!, 6));
    tf.dispose([rc, rr, value, ...grads]);
  });

  it('applies a scalar or per-pair margin', () => {
    const rc = tf.tensor1d(RC);
    const rr = tf.tensor1d(RR);
    const m = tf.tensor1d([0, 0, 0.25, 1]);
    const per = bradleyTerryLosses(rc, rr, m);
    Array.from(per.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(PER_PAIR_MARGIN[i]!, 5));
    const scalar = bradleyTerryLosses(rc, rr, 1);
    // margin 1 on every pair: softplus(−(u − 1))
    Array.from(scalar.dataSync()).forEach((v, i) =>
      expect(v).toBeCloseTo(softplus(-(RC[i]! - RR[i]! - 1)), 5),
    );
    tf.dispose([rc, rr, m, per, scalar]);
  });

  it('is finite for huge margins where log(sigmoid) would be -Infinity, and so is the gradient', () => {
    const rc = tf.tensor1d([200, -200]);
    const rr = tf.tensor1d([0, 0]);
    const { value, grads } = tf.valueAndGrads((c: tf.Tensor) => bradleyTerryLoss(c as tf.Tensor1D, rr))([rc]);
    // mean(softplus(−200), softplus(200)) = (≈0 + 200) / 2
    expect(value.dataSync()[0]).toBeCloseTo(100, 3);
    const g = Array.from(grads[0]!.dataSync());
    expect(g[0]).toBeCloseTo(0, 6); // σ(−200)/2 ≈ 0
    expect(g[1]).toBeCloseTo(-0.5, 6); // −σ(200)/2
    tf.dispose([rc, rr, value, ...grads]);
  });

  it('rejects mismatched shapes and bad margins', () => {
    const a = tf.tensor1d([1, 2]);
    const b = tf.tensor1d([1, 2, 3]);
    expect(() => bradleyTerryLoss(a, b)).toThrow(/same B/);
    expect(() => bradleyTerryLoss(a, a, Number.NaN)).toThrow(/margin must be a finite number/);
    expect(() => bradleyTerryLoss(a, a, b)).toThrow(/margin must be a number or \[2\]/);
    tf.dispose([a, b]);
  });

  it('does not leak tensors', async () => {
    const rc = tf.tensor1d(RC);
    const rr = tf.tensor1d(RR);
    await assertNoLeaks(
      () => {
        const { value, grads } = tf.valueAndGrads((c: tf.Tensor) =>
          bradleyTerryLoss(c as tf.Tensor1D, rr, 0.5),
        )([rc]);
        tf.dispose([value, ...grads]);
      },
      { label: 'bradleyTerryLoss + gradient' },
    );
    tf.dispose([rc, rr]);
  });
});

describe('pairMetrics', () => {
  it('counts ties as half, averages margins, and matches the tensor loss formula', () => {
    const m = pairMetrics([1, 0, 2, 5], [0, 0, 3, 1]);
    expect(m.accuracy).toBeCloseTo((1 + 0.5 + 0 + 1) / 4, 12);
    expect(m.meanMargin).toBeCloseTo((1 + 0 - 1 + 4) / 4, 12);
    expect(m.count).toBe(4);
    const expected = [1, 0, -1, 4].reduce((s, u) => s + Math.log(1 + Math.exp(-u)), 0) / 4;
    expect(m.loss).toBeCloseTo(expected, 12);
    expect(pairMetrics(RC, RR).loss).toBeCloseTo(MEAN, 8);
  });

  it('rejects empty or mismatched inputs', () => {
    expect(() => pairMetrics([], [])).toThrow(/no pairs/);
    expect(() => pairMetrics([1], [1, 2])).toThrow(/same length/);
  });

  it('softplus is stable at both ends', () => {
    expect(softplus(1000)).toBe(1000);
    expect(softplus(-1000)).toBe(0);
    expect(softplus(0)).toBeCloseTo(Math.LN2, 15);
  });
});
