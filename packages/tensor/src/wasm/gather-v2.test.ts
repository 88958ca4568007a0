import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { activate, on, relErr, seeded } from './test-helpers.js';

function ids(count: number, hi: number, seed: number): Int32Array {
  let s = seed >>> 0 || 1;
  return Int32Array.from({ length: count }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % hi;
  });
}

describe('wasm GatherV2', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('is the relign kernel', () => {
    expect(tf.getKernel('GatherV2', 'wasm')!.kernelFunc.name).toBe('gatherV2');
  });

  it('equals cpu: axes, 2-D indices, batchDims, repeated indices', async () => {
    const x = await seeded([6, 5, 4], 1);
    const i0 = ids(9, 6, 2);
    const i1 = ids(7, 5, 3);
    const i2 = ids(12, 4, 4);
    const ib = ids(6 * 3, 5, 5);
    const f = () => {
      const t = tf.tensor(x, [6, 5, 4]);
      return [
        tf.gather(t, tf.tensor1d(i0, 'int32')),
        tf.gather(t, tf.tensor1d(i1, 'int32'), 1),
        tf.gather(t, tf.tensor2d(i2, [3, 4], 'int32'), 2),
        tf.gather(t, tf.tensor1d(i2, 'int32'), -1),
        tf.gather(t, tf.tensor2d(ib, [6, 3], 'int32'), 1, 1),
        tf.gather(tf.tensor(x, [120]), tf.tensor1d(ids(50, 120, 6), 'int32')),
        tf.gather(t, tf.tensor1d([], 'int32')),
      ];
    };
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    want.forEach((w, i) => expect(relErr(got[i]!, w), `case ${i}`).toBe(0));
  });

  it('gathers int32 and bool data', async () => {
    await activate('wasm');
    const xi = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32');
    const xb = tf.tensor2d([true, false, false, true, true, true], [3, 2], 'bool');
    const index = tf.tensor1d([2, 0, 2], 'int32');
    const gi = tf.gather(xi, index);
    const index1 = tf.tensor1d([1, 0, 1], 'int32');
    const gb = tf.gather(xb, index1, 1);
    expect(gi.dtype).toBe('int32');
    expect(Array.from(gi.dataSync())).toEqual([5, 6, 1, 2, 5, 6]);
    expect(gb.dtype).toBe('bool');
    expect(gb.shape).toEqual([3, 3]);
    expect(Array.from(gb.dataSync())).toEqual([0, 1, 0, 1, 0, 1, 1, 1, 1]);
    tf.dispose([xi, xb, index, index1, gi, gb]);
  });

  it('throws on out-of-range indices, like the stock kernel', async () => {
    await activate('wasm');
    const x = tf.ones([4, 3]);
    const bad = tf.tensor1d([0, 4], 'int32');
    const negative = tf.tensor1d([-1], 'int32');
    expect(() => tf.gather(x, bad)).toThrow(/index value 4 is not in \[0, 3\]/);
    expect(() => tf.gather(x, negative)).toThrow(/index value -1/);
    tf.dispose([x, bad, negative]);
  });

  it('leaks no tensors', async () => {
    await activate('wasm');
    const x = tf.randomNormal([50, 16], 0, 1, 'float32', 1);
    const index = tf.tensor1d(ids(40, 50, 7), 'int32');
    await assertNoLeaks(() => tf.gather(x, index), { label: 'gather' });
    tf.dispose([x, index]);
  });
});
