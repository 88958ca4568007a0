import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { concat } from './concat.js';
import { activate, on, seeded } from './test-helpers.js';

describe('wasm Concat', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('is the relign kernel', () => {
    expect(tf.getKernel('Concat', 'wasm')!.kernelFunc).toBe(concat);
  });

  it('equals cpu along every axis, with unequal parts, empty parts and a KV-cache append', async () => {
    const a = await seeded([2, 3, 4, 5], 1);
    const b = await seeded([2, 3, 4, 5], 2);
    const c = await seeded([2, 3, 1, 5], 3);
    const kv = await seeded([16, 4, 9, 8], 4);
    const step = await seeded([16, 4, 1, 8], 5);
    const f = () => {
      const ta = tf.tensor(a, [2, 3, 4, 5]);
      const tb = tf.tensor(b, [2, 3, 4, 5]);
      return [
        tf.concat([ta, tb], 0),
        tf.concat([ta, tb], 1),
        tf.concat([ta, tb, ta], 2),
        tf.concat([ta, tb], 3),
        tf.concat([ta, tf.tensor(c, [2, 3, 1, 5]), tb], -2),
        tf.concat([tf.zeros([2, 3, 0, 5]), ta, tf.zeros([2, 3, 0, 5]), tb], 2),
        tf.concat([tf.tensor(kv, [16, 4, 9, 8]), tf.tensor(step, [16, 4, 1, 8])], 2),
        tf.concat([tf.tensor1d([1, 2]), tf.tensor1d([3])]),
      ];
    };
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    // A copy is exact.
    want.forEach((w, i) => expect(Array.from(got[i]!), `case ${i}`).toEqual(Array.from(w)));
  });

  it('keeps int32 and bool values and shapes', async () => {
    await activate('wasm');
    const i = tf.concat(
      [tf.tensor2d([[1, 2]], [1, 2], 'int32'), tf.tensor2d([[3], [4]].flat(), [1, 2], 'int32')],
      1,
    );
    expect(i.dtype).toBe('int32');
    expect(i.shape).toEqual([1, 4]);
    expect(Array.from(i.dataSync())).toEqual([1, 2, 3, 4]);
    const bl = tf.concat(
      [tf.tensor2d([true, false], [2, 1], 'bool'), tf.tensor2d([false, true], [2, 1], 'bool')],
      1,
    );
    expect(bl.dtype).toBe('bool');
    expect(Array.from(bl.dataSync())).toEqual([1, 0, 0, 1]);
    tf.dispose([i, bl]);
  });

  it('leaks nothing; its gradient equals cpu', async () => {
    const a = await seeded([3, 4], 1);
    const b = await seeded([3, 2], 2);
    const w = await seeded([3, 6], 3);
    const f = () =>
      tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.concat([x, y], 1), tf.tensor(w, [3, 6]))))([
        tf.tensor(a, [3, 4]),
        tf.tensor(b, [3, 2]),
      ]);
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    want.forEach((v, i) => expect(Array.from(got[i]!)).toEqual(Array.from(v)));
    await activate('wasm');
    const x = tf.tensor(a, [3, 4]);
    const y = tf.tensor(b, [3, 2]);
    await assertNoLeaks(() => tf.concat([x, y], 1), { label: 'concat' });
    tf.dispose([x, y]);
  });
});
