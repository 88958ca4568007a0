import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '../testing/index.js';
import { clipByGlobalNorm, CLIP_NORM_EPS } from './clip-grad-norm.js';

const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe.each(TEST_BACKENDS)('clipByGlobalNorm on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('grads [3, 4] and [12] have norm 13; clipping to 1 scales by 1/(13 + 1e-6)', () => {
    const a = tf.tensor1d([3, 4]);
    const b = tf.tensor1d([12]);
    const { grads, norm } = clipByGlobalNorm([a, b], 1);
    expect(norm.dataSync()[0]).toBeCloseTo(13, 5);
    const s = 1 / (13 + CLIP_NORM_EPS);
    values(grads[0]!).forEach((v, i) => expect(v).toBeCloseTo([3 * s, 4 * s][i]!, 6));
    values(grads[1]!).forEach((v) => expect(v).toBeCloseTo(12 * s, 6));
    // The clipped global norm is maxNorm (to within the eps).
    const after = Math.hypot(...values(grads[0]!), ...values(grads[1]!));
    expect(after).toBeCloseTo(1, 5);
    // Inputs untouched.
    expect(values(a)).toEqual([3, 4]);
    tf.dispose([a, b, norm, ...grads]);
  });

  it('leaves gradients below maxNorm unchanged and keeps record keys', () => {
    const g = {
      w: tf.tensor2d([
        [3, 0],
        [0, 4],
      ]),
      b: tf.tensor1d([12]),
    };
    const { grads, norm } = clipByGlobalNorm(g, 20);
    expect(Object.keys(grads).sort()).toEqual(['b', 'w']);
    expect(norm.dataSync()[0]).toBeCloseTo(13, 5);
    expect(grads.w!.shape).toEqual([2, 2]);
    expect(values(grads.w!)).toEqual([3, 0, 0, 4]);
    expect(values(grads.b!)).toEqual([12]);
    tf.dispose([g.w, g.b, norm, grads.w!, grads.b!]);
  });

  it('a non-finite norm is returned as is and the gradients come back unscaled', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const a = tf.tensor1d([3, bad]);
      const b = tf.tensor1d([12]);
      const { grads, norm } = clipByGlobalNorm([a, b], 1);
      const n = norm.dataSync()[0]!;
      expect(Number.isFinite(n)).toBe(false);
      if (Number.isNaN(bad)) expect(Number.isNaN(n)).toBe(true);
      else expect(n).toBe(Number.POSITIVE_INFINITY);
      expect(values(grads[0]!)[0]).toBe(3);
      expect(values(grads[1]!)).toEqual([12]);
      tf.dispose([a, b, norm, ...grads]);
    }
  });

  it('all-zero gradients give norm 0 and stay zero (no 0/0)', () => {
    const z = tf.zeros([3]);
    const { grads, norm } = clipByGlobalNorm([z], 1);
    expect(norm.dataSync()[0]).toBe(0);
    expect(values(grads[0]!)).toEqual([0, 0, 0]);
    tf.dispose([z, norm, ...grads]);
  });

  it('validates inputs and does not leak', async () => {
    const a = tf.tensor1d([3, 4]);
    expect(() => clipByGlobalNorm([a], 0)).toThrow(/`maxNorm` must be a finite number > 0/);
    expect(() => clipByGlobalNorm({ x: 1 } as never, 1)).toThrow(/`grads\["x"\]` must be a tf.Tensor/);
    const i = tf.tensor1d([1], 'int32');
    expect(() => clipByGlobalNorm([a, i], 1)).toThrow(/`grads\[1\]` must be float32/);
    await assertNoLeaks(() => clipByGlobalNorm({ a }, 1), { label: 'clipByGlobalNorm' });
    tf.dispose([a, i]);
  });
});
