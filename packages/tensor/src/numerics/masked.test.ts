import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '../testing/index.js';
import { maskedMean, maskedSum, maskedVar } from './masked.js';

const num = (t: tf.Tensor): number => {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
};

describe.each(TEST_BACKENDS)('masked statistics on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('T1: x = [1,2,3,4], mask = [0,1,1,0] → sum 5, mean 2.5, unbiased var 0.5, biased var 0.25', () => {
    const x = tf.tensor1d([1, 2, 3, 4]);
    const m = tf.tensor1d([0, 1, 1, 0]);
    expect(num(maskedSum(x, m))).toBeCloseTo(5, 6);
    expect(num(maskedMean(x, m))).toBeCloseTo(2.5, 6);
    expect(num(maskedVar(x, m))).toBeCloseTo(0.5, 6);
    expect(num(maskedVar(x, m, { unbiased: false }))).toBeCloseTo(0.25, 6);
    tf.dispose([x, m]);
  });

  it('accepts bool, int32 and float32 masks alike', () => {
    const x = tf.tensor1d([1, 2, 3, 4]);
    for (const m of [
      tf.tensor1d([false, true, true, false], 'bool'),
      tf.tensor1d([0, 1, 1, 0], 'int32'),
      tf.tensor1d([0, 0.5, 2, 0]),
    ]) {
      expect(num(maskedMean(x, m))).toBeCloseTo(2.5, 6);
      m.dispose();
    }
    x.dispose();
  });

  it('per-row sums and means with axis; an empty row (and an empty mask) gives 0, not NaN', () => {
    const x = tf.tensor2d([
      [1, 3, 9],
      [2, 4, 0],
      [8, 0, 0],
      [5, 5, 5],
    ]);
    const m = tf.tensor2d([
      [1, 1, 0],
      [1, 1, 0],
      [1, 0, 0],
      [0, 0, 0],
    ]);
    const sums = maskedSum(x, m, 1);
    const means = maskedMean(x, m, 1);
    expect(Array.from(sums.dataSync())).toEqual([4, 6, 8, 0]);
    expect(Array.from(means.dataSync())).toEqual([2, 3, 8, 0]);
    const colMeans = maskedMean(x, m, 0);
    Array.from(colMeans.dataSync()).forEach((v, i) => expect(v).toBeCloseTo([11 / 3, 3.5, 0][i]!, 5));
    const none = tf.zerosLike(m);
    expect(num(maskedMean(x, none))).toBe(0);
    expect(num(maskedVar(x, none))).toBe(0);
    tf.dispose([x, m, none, sums, means, colMeans]);
  });

  it('equals the plain statistics of the selected elements (random data, random masks)', () => {
    const rng = createRng('masked-random');
    for (let trial = 0; trial < 5; trial++) {
      const rows = 1 + rng.int(5);
      const cols = 2 + rng.int(10);
      const data = Array.from({ length: rows * cols }, () => rng.normal(3, 2));
      const mask = Array.from({ length: rows * cols }, () => (rng.uniform() < 0.6 ? 1 : 0));
      mask[rng.int(rows * cols)] = 1;
      mask[rng.int(rows * cols)] = 1;
      const sel = data.filter((_, i) => mask[i]);
      const n = sel.length;
      const mean = sel.reduce((a, b) => a + b, 0) / n;
      const ss = sel.reduce((a, b) => a + (b - mean) ** 2, 0);
      const x = tf.tensor2d(data, [rows, cols]);
      const m = tf.tensor2d(mask, [rows, cols]);
      expect(num(maskedSum(x, m))).toBeCloseTo(mean * n, 4);
      expect(num(maskedMean(x, m))).toBeCloseTo(mean, 5);
      expect(num(maskedVar(x, m, { unbiased: false }))).toBeCloseTo(ss / n, 4);
      if (n > 1) expect(num(maskedVar(x, m))).toBeCloseTo(ss / (n - 1), 4);
      const rowMeans = tf.tidy(() => maskedMean(x, m, 1).dataSync());
      for (let r = 0; r < rows; r++) {
        const rs = data.slice(r * cols, (r + 1) * cols).filter((_, i) => mask[r * cols + i]);
        expect(rowMeans[r]).toBeCloseTo(rs.length ? rs.reduce((a, b) => a + b, 0) / rs.length : 0, 5);
      }
      tf.dispose([x, m]);
    }
  });

  it('NaN/Inf at masked positions leak neither into results nor into gradients', () => {
    const x = tf.tensor2d([
      [1, Number.NaN, 3],
      [Number.POSITIVE_INFINITY, 5, Number.NEGATIVE_INFINITY],
    ]);
    const m = tf.tensor2d([
      [1, 0, 1],
      [0, 1, 0],
    ]);
    expect(num(maskedSum(x, m))).toBeCloseTo(9, 6);
    expect(num(maskedMean(x, m))).toBeCloseTo(3, 6);
    expect(num(maskedVar(x, m))).toBeCloseTo(4, 5); // var([1, 3, 5]) = 4
    const rows = maskedMean(x, m, 1);
    expect(Array.from(rows.dataSync())).toEqual([2, 5]);
    // d maskedMean / dx = mask / count; d maskedVar / dx = 2 (x − mean) / (n − 1) at selected positions.
    const gMean = tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) => maskedMean(v, m))(x)
        .dataSync(),
    );
    const gVar = tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) => maskedVar(v, m))(x)
        .dataSync(),
    );
    const expMean = [1 / 3, 0, 1 / 3, 0, 1 / 3, 0];
    const expVar = [-2, 0, 0, 0, 2, 0];
    expMean.forEach((e, i) => expect(gMean[i]).toBeCloseTo(e, 6));
    expVar.forEach((e, i) => expect(gVar[i]).toBeCloseTo(e, 5));
    tf.dispose([x, m, rows]);
  });

  it('validates inputs and does not leak', async () => {
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const m = tf.tensor2d([
      [1, 0],
      [1, 1],
    ]);
    const bad = tf.tensor1d([1, 0]);
    const xi = tf.tensor2d(
      [
        [1, 2],
        [3, 4],
      ],
      [2, 2],
      'int32',
    );
    expect(() => maskedMean(x, bad)).toThrow(/maskedMean: `mask` must have the same shape as `values`/);
    expect(() => maskedSum(xi, m)).toThrow(/maskedSum: `values` must be float32/);
    expect(() => maskedVar(x, [1, 0] as never)).toThrow(/`mask` must be a tf.Tensor/);
    await assertNoLeaks(
      () => [maskedSum(x, m), maskedMean(x, m, 1), maskedVar(x, m), maskedVar(x, m, { unbiased: false })],
      {
        label: 'masked statistics',
      },
    );
    await assertNoLeaks(() => tf.grad((v: tf.Tensor) => maskedVar(v, m))(x), { label: 'grad of maskedVar' });
    tf.dispose([x, m, bad, xi]);
  });
});
