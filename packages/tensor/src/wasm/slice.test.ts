import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { slice, splitV } from './slice.js';
import { activate, on, seeded } from './test-helpers.js';

describe('wasm Slice and SplitV', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('are the relign kernels', () => {
    expect(tf.getKernel('Slice', 'wasm')!.kernelFunc).toBe(slice);
    expect(tf.getKernel('SplitV', 'wasm')!.kernelFunc).toBe(splitV);
  });

  it('slices equal cpu: contiguous, strided, ranks 1 to 5, empty, whole', async () => {
    const x = await seeded([3, 4, 5, 2, 3], 1);
    const shape = [3, 4, 5, 2, 3];
    const f = () => {
      const t = tf.tensor(x, shape);
      const m = tf.reshape(t, [12, 30]);
      return [
        tf.slice(t, [1, 0, 0, 0, 0], [2, 4, 5, 2, 3]), // contiguous rows
        tf.slice(t, [0, 1, 2, 0, 1], [3, 2, 3, 2, 2]), // strided in every dim
        tf.slice(t, [2, 3, 4, 1, 2], [1, 1, 1, 1, 1]), // one element
        tf.slice(t, [0, 0, 0, 0, 0], [-1, -1, -1, -1, -1]), // whole
        tf.slice(t, [0, 2, 0, 0, 0], [3, 0, 5, 2, 3]), // empty
        tf.slice(m, [0, 10], [12, 10]), // a column block
        tf.slice(m, [5, 0], [1, 30]), // one row
        tf.slice(tf.reshape(t, [360]), 7, 100), // rank 1
        tf.slice(tf.reshape(t, [6, 10, 6]), [1, 3, 0], [4, 5, 6]),
      ];
    };
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    want.forEach((w, i) => expect(Array.from(got[i]!), `case ${i}`).toEqual(Array.from(w)));
  });

  it('split equals cpu (equal parts, sizes, -1, every axis) and keeps int32 / bool', async () => {
    const x = await seeded([4, 6, 9], 2);
    const f = () => {
      const t = tf.tensor(x, [4, 6, 9]);
      return [
        ...tf.split(t, 3, 2),
        ...tf.split(t, [1, 2, 3], 1),
        ...tf.split(t, [1, -1], 0),
        ...tf.split(tf.reshape(t, [4, 54]), [18, 18, 18], 1),
      ];
    };
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    expect(got.length).toBe(want.length);
    want.forEach((w, i) => expect(Array.from(got[i]!), `part ${i}`).toEqual(Array.from(w)));
    await activate('wasm');
    const [p, q] = tf.split(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), [2, 1], 1);
    expect(p!.dtype).toBe('int32');
    expect(p!.shape).toEqual([2, 2]);
    expect(Array.from(p!.dataSync())).toEqual([1, 2, 4, 5]);
    expect(Array.from(q!.dataSync())).toEqual([3, 6]);
    const bl = tf.slice(tf.tensor1d([true, false, true], 'bool'), 1, 2);
    expect(bl.dtype).toBe('bool');
    expect(Array.from(bl.dataSync())).toEqual([0, 1]);
    tf.dispose([p!, q!, bl]);
  });

  it('rejects out-of-range slices; leaks nothing; gradients equal cpu', async () => {
    await activate('wasm');
    const t = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(() => tf.slice(t, [1, 1], [2, 2])).toThrow();
    await assertNoLeaks(() => tf.slice(t, [0, 1], [2, 2]), { label: 'slice' });
    await assertNoLeaks(() => tf.split(t, 3, 1), { label: 'split' });
    t.dispose();
    const x = await seeded([5, 7], 3);
    const w = await seeded([5, 3], 4);
    const f = () =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.slice(v, [0, 2], [5, 3]), tf.tensor(w, [5, 3]))))(
        tf.tensor(x, [5, 7]),
      );
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    expect(Array.from(got)).toEqual(Array.from(want));
  });
});
