import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { gae, gaeOnHost } from './gae.js';

const close = (actual: ArrayLike<number>, expected: number[], tol = 1e-5) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) =>
    expect(Math.abs(actual[i]! - e), `index ${i}: ${actual[i]} vs ${e}`).toBeLessThan(tol),
  );
};

describe.each(TEST_BACKENDS)('gae on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('T7: Convention A rewards, no padding (docs/algorithms.md §5.2)', async () => {
    const r = tf.tensor2d([[0.02, -0.02, 0.05, 0.98]]);
    const v = tf.tensor2d([[0.5, 0.4, 0.3, 0.2]]);
    const m = tf.ones([1, 4]) as tf.Tensor2D;
    const { advantages, returns } = await gae(r, v, m, { gamma: 1, lambda: 0.95 });
    close(advantages.dataSync(), [0.429627, 0.53645, 0.691, 0.78]);
    close(returns.dataSync(), [0.929627, 0.93645, 0.991, 0.98]);
    tf.dispose([r, v, m, advantages, returns]);
  });

  it('T8: right padding gives A = R = 0 there and ignores junk values and NaN rewards at padding', async () => {
    const r = tf.tensor2d([[0.02, -0.02, 1.05, NaN, 7]]);
    const v = tf.tensor2d([[0.5, 0.4, 0.3, 123, NaN]]);
    const m = tf.tensor2d([[1, 1, 1, 0, 0]]);
    const { advantages, returns } = await gae(r, v, m, { gamma: 1, lambda: 0.95 });
    close(advantages.dataSync(), [0.482875, 0.5925, 0.75, 0, 0]);
    close(returns.dataSync(), [0.982875, 0.9925, 1.05, 0, 0]);
    tf.dispose([r, v, m, advantages, returns]);
  });

  it('gives the unpadded result for every padding layout (left, right, holes) and a bool mask', async () => {
    // The T8 sequence placed at different columns of a width-6 row.
    const seq = { r: [0.02, -0.02, 1.05], v: [0.5, 0.4, 0.3] };
    const layouts = [
      [0, 1, 2],
      [3, 4, 5],
      [1, 2, 3],
      [0, 2, 5],
    ];
    const R: number[][] = [];
    const V: number[][] = [];
    const M: boolean[][] = [];
    for (const cols of layouts) {
      const r = Array(6).fill(9);
      const v = Array(6).fill(-9);
      const m = Array(6).fill(false);
      cols.forEach((c, i) => {
        r[c] = seq.r[i];
        v[c] = seq.v[i];
        m[c] = true;
      });
      R.push(r);
      V.push(v);
      M.push(m);
    }
    const [r, v, m] = [tf.tensor2d(R), tf.tensor2d(V), tf.tensor2d(M, undefined, 'bool')];
    const { advantages, returns } = await gae(r, v, m, { gamma: 1, lambda: 0.95 });
    const a = advantages.arraySync();
    const ret = returns.arraySync();
    layouts.forEach((cols, row) => {
      close(
        cols.map((c) => a[row]![c]!),
        [0.482875, 0.5925, 0.75],
      );
      close(
        cols.map((c) => ret[row]![c]!),
        [0.982875, 0.9925, 1.05],
      );
      for (let c = 0; c < 6; c++) if (!cols.includes(c)) expect(a[row]![c]).toBe(0);
    });
    tf.dispose([r, v, m, advantages, returns]);
  });

  it('γ and λ enter as in the recursion: λ = 0 gives one-step TD errors, γ = 0 gives r − V', async () => {
    const r = tf.tensor2d([[1, 2, 3]]);
    const v = tf.tensor2d([[0.5, 0.25, 2]]);
    const m = tf.ones([1, 3]) as tf.Tensor2D;
    const td = await gae(r, v, m, { gamma: 0.9, lambda: 0 });
    close(td.advantages.dataSync(), [1 + 0.9 * 0.25 - 0.5, 2 + 0.9 * 2 - 0.25, 3 - 2]);
    const myopic = await gae(r, v, m, { gamma: 0, lambda: 0.95 });
    close(myopic.advantages.dataSync(), [0.5, 1.75, 1]);
    close(myopic.returns.dataSync(), [1, 2, 3]);
    tf.dispose([r, v, m, td.advantages, td.returns, myopic.advantages, myopic.returns]);
  });

  it('gaeOnHost: the same recursion on host arrays (T7, T8), without reading any tensor', () => {
    const t7 = gaeOnHost([0.02, -0.02, 0.05, 0.98], [0.5, 0.4, 0.3, 0.2], [1, 1, 1, 1], [1, 4], {
      gamma: 1,
      lambda: 0.95,
    });
    close(t7.advantages, [0.429627, 0.53645, 0.691, 0.78]);
    close(t7.returns, [0.929627, 0.93645, 0.991, 0.98]);
    const t8 = gaeOnHost([0.02, -0.02, 1.05, NaN, 7], [0.5, 0.4, 0.3, 123, NaN], [1, 1, 1, 0, 0], [1, 5], {
      gamma: 1,
      lambda: 0.95,
    });
    close(t8.advantages, [0.482875, 0.5925, 0.75, 0, 0]);
    expect(() => gaeOnHost([1, 2], [1], [1, 1], [1, 2], { gamma: 1, lambda: 1 })).toThrow(
      /gae: `values` has 1 entries, expected B·T = 2/,
    );
  });

  it('rejects bad input naming the argument, and does not leak', async () => {
    const r = tf.tensor2d([[1, 2]]);
    const v = tf.tensor2d([[1, 2, 3]]);
    const m = tf.ones([1, 2]) as tf.Tensor2D;
    expect(() => gae(r, v, m, { gamma: 1, lambda: 0.95 })).toThrow(/gae: `values` must have shape \[1, 2\]/);
    expect(() => gae(r, r, m, { gamma: 1.5, lambda: 0.95 })).toThrow(/options.gamma/);
    expect(() => gae(r, r, m, { gamma: 1, lambda: -1 })).toThrow(/options.lambda/);
    expect(() => gae(r, r, m, { gamma: 1 } as never)).toThrow(/options.lambda/);
    const nan = tf.tensor2d([[1, NaN]]);
    // A non-finite value is found once the data is read: the promise rejects.
    await expect(gae(r, nan, m, { gamma: 1, lambda: 1 })).rejects.toThrow(
      /values\[0, 1\] = NaN is not finite/,
    );
    await assertNoLeaks(() => gae(r, r, m, { gamma: 1, lambda: 0.95 }), { label: 'gae' });
    tf.dispose([r, v, m, nan]);
  });
});
