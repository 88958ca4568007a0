import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '../testing/index.js';
import { stopGradient } from './stop-gradient.js';

describe.each(TEST_BACKENDS)('stopGradient on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('keeps the value and blocks the gradient', async () => {
    const x = tf.tensor1d([1, -2, 3]);
    const y = stopGradient(x);
    expect(y).not.toBe(x); // a new tensor: the caller may dispose either
    expect(Array.from(await y.data())).toEqual([1, -2, 3]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.add(tf.mul(stopGradient(v), v), stopGradient(v))))(x);
    expect(Array.from(await g.data())).toEqual([1, -2, 3]); // d/dv [sg(v)·v + sg(v)] = sg(v)
    tf.dispose([x, y, g]);
  });

  it('leaks no tensors, forward or backward', async () => {
    const x = tf.tensor1d([1, 2]);
    await assertNoLeaks(() => stopGradient(x), { label: 'stopGradient' });
    await assertNoLeaks(() => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(stopGradient(v), v)))(x), {
      label: 'stopGradient gradient',
    });
    x.dispose();
  });
});
