import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '../testing/index.js';
import { klEstimate } from './kl.js';

describe.each(TEST_BACKENDS)('klEstimate on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('matches T6: ℓθ = [−1, −0.5, −2], ℓref = [−1.5, −0.5, −1]', () => {
    const logp = tf.tensor1d([-1.0, -0.5, -2.0]);
    const ref = tf.tensor1d([-1.5, -0.5, -1.0]);
    const expected = { k1: [0.5, 0, -1], k2: [0.125, 0, 0.5], k3: [0.106531, 0, 0.718282] } as const;
    for (const k of ['k1', 'k2', 'k3'] as const) {
      const out = klEstimate(logp, ref, k);
      const d = out.dataSync();
      expected[k].forEach((e, i) => expect(d[i]).toBeCloseTo(e, 6));
      out.dispose();
    }
    tf.dispose([logp, ref]);
  });

  it('k2 and k3 are ≥ 0 and agree to second order near Δ = 0; shapes are kept', () => {
    const rng = createRng('kl');
    const a = Float32Array.from({ length: 24 }, () => rng.normal(-2, 1));
    const delta = Float32Array.from({ length: 24 }, () => rng.normal(0, 1e-2));
    const logp = tf.tensor2d(a, [4, 6]);
    const ref = tf.tensor2d(
      a.map((x, i) => x - delta[i]!),
      [4, 6],
    );
    const k2 = klEstimate(logp, ref, 'k2');
    const k3 = klEstimate(logp, ref, 'k3');
    expect(k3.shape).toEqual([4, 6]);
    const d2 = k2.dataSync();
    const d3 = k3.dataSync();
    for (let i = 0; i < 24; i++) {
      expect(d2[i]).toBeGreaterThanOrEqual(0);
      expect(d3[i]).toBeGreaterThanOrEqual(0);
      // k3 − k2 = −Δ³/6 + O(Δ⁴); |Δ| ~ 1e-2 plus float32 rounding of the inputs (~1e-7 · |ℓ|).
      expect(Math.abs(d3[i]! - d2[i]!)).toBeLessThan(5e-6);
    }
    tf.dispose([logp, ref, k2, k3]);
  });

  it('validates inputs and does not leak', async () => {
    const a = tf.tensor1d([1, 2]);
    const b = tf.tensor1d([1, 2, 3]);
    expect(() => klEstimate(a, b, 'k1')).toThrow(/`refLogp` must have the same shape as `logp`/);
    expect(() => klEstimate(a, a, 'k4' as never)).toThrow(/'k1', 'k2' or 'k3'/);
    await assertNoLeaks(() => klEstimate(a, a, 'k3'), { label: 'klEstimate' });
    tf.dispose([a, b]);
  });
});
