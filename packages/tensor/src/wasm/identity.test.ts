import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { isMemoryOrderPreserving } from './identity.js';
import { activate, on, relErr, seeded } from './test-helpers.js';

type WasmBackend = tf.KernelBackend & { numDataIds(): number };

describe('wasm Identity and memory-order Transpose share data', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('tf.clone allocates nothing, and the clone outlives the original', async () => {
    await activate('wasm');
    const backend = tf.backend() as WasmBackend;
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const before = backend.numDataIds();
    const y = tf.clone(x);
    expect(backend.numDataIds()).toBe(before);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    y.dispose();
    expect(backend.numDataIds()).toBe(before - 1);
  });

  it('detects permutations that keep the memory order', () => {
    expect(isMemoryOrderPreserving([4, 5], [0, 1])).toBe(true);
    expect(isMemoryOrderPreserving([4, 5], [1, 0])).toBe(false);
    expect(isMemoryOrderPreserving([1, 5], [1, 0])).toBe(true);
    expect(isMemoryOrderPreserving([3, 1, 5], [1, 0, 2])).toBe(true);
    expect(isMemoryOrderPreserving([3, 1, 5], [2, 1, 0])).toBe(false);
    expect(isMemoryOrderPreserving([2, 1, 1, 4], [0, 2, 3, 1])).toBe(true);
  });

  it('transposes equal cpu, shared or copied', async () => {
    const x = await seeded([3, 1, 4, 1, 2], 3);
    const perms = [
      [0, 1, 2, 3, 4],
      [1, 0, 2, 3, 4],
      [0, 2, 1, 4, 3],
      [4, 2, 0, 1, 3],
      [3, 1, 0, 2, 4],
      [2, 0, 1, 3, 4],
    ];
    const f = () => perms.map((p) => tf.transpose(tf.tensor(x, [3, 1, 4, 1, 2]), p));
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    want.forEach((w, i) => expect(relErr(got[i]!, w), `perm ${perms[i]}`).toBe(0));
  });

  it('gradients through clones and transposes equal cpu; nothing leaks', async () => {
    const a = await seeded([4, 1, 6], 1);
    const f = () =>
      tf.grad((x: tf.Tensor) =>
        tf.sum(tf.square(tf.matMul(tf.transpose(x, [1, 0, 2]).reshape([4, 6]), tf.clone(x).reshape([6, 4])))),
      )(tf.tensor(a, [4, 1, 6]));
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    expect(relErr(got, want)).toBeLessThan(1e-4);
    await activate('wasm');
    const t = tf.tensor(a, [4, 1, 6]);
    await assertNoLeaks(() => tf.transpose(t, [1, 0, 2]), { label: 'transpose' });
    await assertNoLeaks(() => tf.clone(t), { label: 'clone' });
    await assertNoLeaks(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, x)))(t), { label: 'grad' });
    t.dispose();
  });
});
