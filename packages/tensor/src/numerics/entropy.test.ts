import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '../testing/index.js';
import { entropyFromLogits } from './entropy.js';

describe.each(TEST_BACKENDS)('entropyFromLogits on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('matches T5: logits [2, 1, 0] give 0.832396 at τ = 1 and 0.441057 at τ = 0.5', () => {
    const logits = tf.tensor3d([[[2, 1, 0]], [[2, 1, 0]]]);
    const h1 = entropyFromLogits(logits);
    const h05 = entropyFromLogits(logits, 0.5);
    expect(h1.shape).toEqual([2, 1]);
    for (const v of h1.dataSync()) expect(v).toBeCloseTo(0.832396, 5);
    for (const v of h05.dataSync()) expect(v).toBeCloseTo(0.441057, 5);
    tf.dispose([logits, h1, h05]);
  });

  it('is log V for uniform logits and ~0 for a peaked row (masked with −1e9)', () => {
    const logits = tf.tensor3d([
      [
        [3, 3, 3, 3],
        [0, -1e9, -1e9, -1e9],
      ],
    ]);
    const h = entropyFromLogits(logits).dataSync();
    expect(h[0]).toBeCloseTo(Math.log(4), 5);
    expect(h[1]).toBeCloseTo(0, 6);
    logits.dispose();
  });

  it('has gradient −p·(z − E_p[z])/τ, and matches a float64 reference on random logits', () => {
    const B = 2,
      T = 3,
      V = 9,
      tau = 0.8;
    const rng = createRng('entropy');
    const data = Float32Array.from({ length: B * T * V }, () => rng.normal(0, 2));
    const expH: number[] = [];
    const expG: number[] = [];
    for (let r = 0; r < B * T; r++) {
      const z = Array.from(data.subarray(r * V, (r + 1) * V), (x) => x / tau);
      const m = Math.max(...z);
      const s = z.reduce((a, x) => a + Math.exp(x - m), 0);
      const p = z.map((x) => Math.exp(x - m) / s);
      const ez = p.reduce((a, pi, i) => a + pi * z[i]!, 0);
      expH.push(m + Math.log(s) - ez);
      for (let v = 0; v < V; v++) expG.push((-p[v]! * (z[v]! - ez)) / tau);
    }
    const x = tf.tensor3d(data, [B, T, V]);
    const h = entropyFromLogits(x, tau).dataSync();
    const g = tf.grad((l: tf.Tensor) => tf.sum(entropyFromLogits(l as tf.Tensor3D, tau)))(x);
    const gd = g.dataSync();
    expH.forEach((e, i) => expect(h[i]).toBeCloseTo(e, 5));
    expG.forEach((e, i) => expect(gd[i]).toBeCloseTo(e, 5));
    tf.dispose([x, g]);
  });

  it('validates inputs and does not leak', async () => {
    const x = tf.randomNormal([2, 2, 5], 0, 1, 'float32', 3) as tf.Tensor3D;
    expect(() => entropyFromLogits(tf.zeros([2, 5]) as never)).toThrow(/`logits` must have rank 3/);
    expect(() => entropyFromLogits(x, -1)).toThrow(/`temperature` must be a finite number > 0/);
    await assertNoLeaks(() => entropyFromLogits(x, 0.7), { label: 'entropyFromLogits' });
    await assertNoLeaks(() => tf.grad((l: tf.Tensor) => tf.sum(entropyFromLogits(l as tf.Tensor3D)))(x), {
      label: 'grad of entropyFromLogits',
    });
    x.dispose();
  });
});
