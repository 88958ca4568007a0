import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { logprobsFromLogits } from '../numerics/logprobs.js';
import { fusedGelu, fusedLayerNorm } from './fused-ops.js';
import { activate, on, relErr, seeded } from './test-helpers.js';

/** The unfused forms, exactly as @relign/lm's model layers compute them. */
const C = 1.5957691216057308;
const geluRef = (x: tf.Tensor) =>
  tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), C * 0.044715), C))));
function layerNormRef(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number) {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), g), b);
}

async function kernelsOf(f: () => tf.Tensor): Promise<string[]> {
  const info = await tf.profile(() => f());
  return info.kernelNames;
}

describe('fused GELU and LayerNorm', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('fusedGelu equals the unfused formula on cpu to 1e-6 (odd sizes, large |x|) in one wasm kernel', async () => {
    const base = await seeded([7, 131], 11);
    const x = Float32Array.from(base, (v, i) => (i % 97 === 0 ? v * 60 : v * 3)); // includes |x| ~ 100+
    for (const shape of [[7, 131], [917], [3], [1, 4]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = x.subarray(0, n);
      const want = await on('cpu', () => geluRef(tf.tensor(data, shape)));
      const got = await on('wasm', () => fusedGelu(tf.tensor(data, shape)));
      expect(relErr(got, want), `shape ${shape}`).toBeLessThan(1e-6);
    }
    await activate('wasm');
    const t = tf.tensor(x, [7, 131]);
    expect(await kernelsOf(() => fusedGelu(t))).toEqual(['RelignGelu']);
    await assertNoLeaks(() => fusedGelu(t), { label: 'fusedGelu' });
    t.dispose();
  });

  it('fusedLayerNorm equals the unfused formula on cpu to 1e-6 (d with a tail, rank 3) in one wasm kernel', async () => {
    for (const shape of [
      [33, 130],
      [2, 5, 7],
      [4, 128],
    ]) {
      const d = shape[shape.length - 1]!;
      const x = await seeded(shape, d);
      const g = await seeded([d], d + 1);
      const b = await seeded([d], d + 2);
      const args = () => [tf.tensor(x, shape), tf.tensor(g, [d]), tf.tensor(b, [d])] as const;
      const want = await on('cpu', () => layerNormRef(...args(), 1e-5));
      const got = await on('wasm', () => fusedLayerNorm(...args(), 1e-5));
      expect(relErr(got, want), `shape ${shape}`).toBeLessThan(1e-6);
      const cpuFused = await on('cpu', () => fusedLayerNorm(...args(), 1e-5));
      expect(relErr(cpuFused, want)).toBe(0); // the fallback is the unfused formula itself
    }
    await activate('wasm');
    const [x, g, b] = [tf.randomNormal([16, 24]), tf.ones([24]), tf.zeros([24])];
    expect(await kernelsOf(() => fusedLayerNorm(x, g, b))).toEqual(['RelignLayerNorm']);
    await assertNoLeaks(() => fusedLayerNorm(x, g, b), { label: 'fusedLayerNorm' });
    expect(() => fusedLayerNorm(x, tf.ones([23]), b)).toThrow(/one value per feature/);
    tf.dispose([x, g, b]);
  });

  it('gradients under a tape equal those of the unfused formulas on cpu', async () => {
    const shape = [9, 70];
    const x = await seeded(shape, 21);
    const g = await seeded([70], 22);
    const b = await seeded([70], 23);
    const w = await seeded(shape, 24); // a weighting, so the loss is not symmetric in the outputs
    const loss = (f: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor) => () =>
      tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(f(xx, gg, bb), tf.tensor(w, shape))),
      )([tf.tensor(x, shape), tf.tensor(g, [70]), tf.tensor(b, [70])]);
    const ref = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => geluRef(layerNormRef(xx, gg, bb, 1e-5));
    const ours = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => fusedGelu(fusedLayerNorm(xx, gg, bb, 1e-5));
    const want = await on('cpu', loss(ref));
    const got = await on('wasm', loss(ours));
    want.forEach((wv, i) => expect(relErr(got[i]!, wv), `gradient ${i}`).toBeLessThan(1e-5));
  });

  it('logprobsFromLogits runs its forward as one wasm kernel, equal to cpu (temperature, odd V, bad ids)', async () => {
    const [B, T, V] = [3, 5, 131];
    const logits = Float32Array.from(await seeded([B, T, V], 31), (v) => v * 8);
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37) % V);
    ids[4] = V; // out of range -> NaN
    ids[7] = -1;
    for (const tau of [1, 0.7]) {
      const f = () =>
        logprobsFromLogits(tf.tensor3d(logits, [B, T, V]), tf.tensor2d(ids, [B, T], 'int32'), tau);
      const want = await on('cpu', f);
      const got = await on('wasm', f);
      expect(Number.isNaN(got[4]!) && Number.isNaN(got[7]!)).toBe(true);
      const ok = (a: Float32Array) => a.filter((_, i) => i !== 4 && i !== 7);
      expect(relErr(ok(got), ok(want)), `tau ${tau}`).toBeLessThan(1e-6);
    }
    await activate('wasm');
    const x = tf.tensor3d(logits, [B, T, V]);
    const tok = tf.tensor2d(
      ids.map((i) => Math.max(0, i % V)),
      [B, T],
      'int32',
    );
    const kernels = await kernelsOf(() => logprobsFromLogits(x, tok));
    expect(kernels).toContain('RelignTokenLogprob');
    expect(kernels).not.toContain('Exp');
    await assertNoLeaks(() => logprobsFromLogits(x, tok), { label: 'fused token log-probs' });
    tf.dispose([x, tok]);
  });
});
