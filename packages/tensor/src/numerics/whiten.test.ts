import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '../testing/index.js';
import { maskedWhiten } from './whiten.js';

function expectClose(actual: ArrayLike<number>, expected: number[], digits = 5): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
}

describe.each(TEST_BACKENDS)('maskedWhiten on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('T1: whitens [1,2,3,4] with mask [0,1,1,0] like whiten([2,3]) and returns all positions', () => {
    const x = tf.tensor1d([1, 2, 3, 4]);
    const m = tf.tensor1d([0, 1, 1, 0]);
    const w = maskedWhiten(x, m);
    expectClose(w.dataSync(), [-2.12132, -0.707107, 0.707107, 2.12132]);
    tf.dispose([x, m, w]);
  });

  it('T7: whitened advantages with unbiased and biased variance (full mask)', () => {
    const a = tf.tensor2d([[0.429627, 0.53645, 0.691, 0.78]]);
    const m = tf.onesLike(a);
    const u = maskedWhiten(a, m);
    const b = maskedWhiten(a, m, { unbiased: false });
    expectClose(u.dataSync(), [-1.14845, -0.465534, 0.522504, 1.09148]);
    expectClose(b.dataSync(), [-1.326116, -0.537552, 0.603335, 1.260333]);
    tf.dispose([a, m, u, b]);
  });

  it('T9: statistics over indices 0..2 only', () => {
    const a = tf.tensor1d([0.449031, 0.556875, 0.7125, 0.75, 0]);
    const m = tf.tensor1d([1, 1, 1, 0, 0]);
    const w = maskedWhiten(a, m).dataSync();
    expectClose(w.slice(0, 3), [-0.93444, -0.120246, 1.054686]);
    tf.dispose([a, m]);
  });

  it('shiftMean = false adds the mean back; eps enters under the square root', () => {
    const x = tf.tensor1d([1, 2, 3, 4]);
    const m = tf.tensor1d([0, 1, 1, 0]);
    const w = maskedWhiten(x, m, { shiftMean: false });
    expectClose(w.dataSync(), [-2.12132 + 2.5, -0.707107 + 2.5, 0.707107 + 2.5, 2.12132 + 2.5]);
    // var = 0.5; with eps = 0.5 the scale is 1/sqrt(1) = 1: output = x − 2.5.
    const e = maskedWhiten(x, m, { eps: 0.5 });
    expectClose(e.dataSync(), [-1.5, -0.5, 0.5, 1.5]);
    expect(() => maskedWhiten(x, m, { eps: -1 })).toThrow(/`eps` must be a finite number >= 0/);
    tf.dispose([x, m, w, e]);
  });

  it('NaN/Inf at masked positions do not reach the selected outputs', () => {
    const x = tf.tensor1d([Number.NaN, 2, 3, Number.POSITIVE_INFINITY]);
    const m = tf.tensor1d([0, 1, 1, 0]);
    const w = maskedWhiten(x, m).dataSync();
    expect(w[1]).toBeCloseTo(-0.707107, 5);
    expect(w[2]).toBeCloseTo(0.707107, 5);
    tf.dispose([x, m]);
  });

  it('validates inputs and does not leak', async () => {
    const x = tf.tensor1d([1, 2, 3]);
    const m = tf.tensor1d([1, 1, 0]);
    expect(() => maskedWhiten(x, tf.tensor1d([1, 1]))).toThrow(
      /maskedWhiten: `mask` must have the same shape/,
    );
    await assertNoLeaks(() => maskedWhiten(x, m, { shiftMean: false }), { label: 'maskedWhiten' });
    tf.dispose([x, m]);
  });
});
