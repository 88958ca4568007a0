import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { attend, attentionBias } from './attention.js';

/** Seeded values in [-2, 2) (the same on every backend). */
function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 4 - 2;
  });
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return a.length === b.length ? diff / scale : Infinity;
}

const [B, H, T, Dh] = [2, 3, 5, 7];
// Row 0 is all padding (its query row sees no key: uniform, as before), row 1 left-padded by 2.
const KEY_MASK = [
  [0, 0, 0, 0, 0],
  [0, 0, 1, 1, 1],
];

/** attend's output and its gradients in q, k, v under a weighted sum, on `backend`. */
async function run(backend: 'cpu' | 'wasm'): Promise<{ out: Float32Array[]; kernels: string[] }> {
  await useBackend(backend);
  const n = B * H * T * Dh;
  const [q, k, v, w] = [1, 2, 3, 4].map((s) => tf.tensor4d(values(n, s), [B, H, T, Dh]));
  const bias = tf.tidy(() => attentionBias(tf.tensor2d(KEY_MASK), 0, T));
  const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.sum(tf.mul(attend(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, bias, 0.4), w!));
  const grads = tf.grads(f);
  const info = await tf.profile(() => [attend(q!, k!, v!, bias, 0.4), ...grads([q!, k!, v!])]);
  const fwd = tf.tidy(() => attend(q!, k!, v!, bias, 0.4));
  const g = grads([q!, k!, v!]);
  const out = [await fwd.data(), ...(await Promise.all(g.map((t) => t.data())))] as Float32Array[];
  await assertNoLeaks(() => grads([q!, k!, v!]), { label: 'attend gradients' });
  tf.dispose([q!, k!, v!, w!, bias, fwd, ...g, ...(info.result as tf.Tensor[])]);
  return { out, kernels: info.kernels.map((x) => x.name) };
}

describe('attend', () => {
  afterAll(() => useBackend('cpu'));

  it('on wasm: the masked softmax is one kernel each way; values and gradients equal cpu', async () => {
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    expect(wasm.kernels).toContain('RelignMaskedSoftmax');
    expect(wasm.kernels).toContain('RelignMaskedSoftmaxGrad');
    expect(wasm.kernels).not.toContain('Softmax');
    for (let i = 0; i < 4; i++) expect(relErr(wasm.out[i]!, cpu.out[i]!), `output ${i}`).toBeLessThan(1e-5);
  });

  it('on wasm, a decode step over a cache without a gradient tape is one kernel reading `length` keys', async () => {
    await useBackend('wasm');
    const q = tf.tensor4d(values(B * H * 1 * Dh, 5), [B, H, 1, Dh]);
    const buf = tf.tensor4d(values(B * H * 9 * Dh, 6), [B, H, 9, Dh]);
    const bias = tf.tidy(() => tf.reshape(tf.mul(tf.sub(tf.tensor2d(KEY_MASK), 1), 1e9), [B, 1, 1, T]));
    const info = await tf.profile(() => attend(q, buf, buf, bias as tf.Tensor4D, 0.4, T, true));
    expect(info.kernels.map((x) => x.name)).toEqual(['RelignPrefixAttention']);
    const got = await (info.result as tf.Tensor).data();
    const want = tf.tidy(() => {
      const kv = tf.slice(buf, [0, 0, 0, 0], [B, H, T, Dh]);
      return tf.matMul(tf.softmax(tf.add(tf.matMul(tf.mul(q, 0.4), kv, false, true), bias)), kv);
    });
    expect(relErr(got, await want.data())).toBeLessThan(1e-5);
    tf.dispose([q, buf, bias, want, info.result as tf.Tensor]);
  });

  it('without a cache, a forward gives the same bits with and without a gradient tape (wasm)', async () => {
    await useBackend('wasm');
    const n = B * H * T * Dh;
    const [q, k, v] = [7, 8, 9].map((s) => tf.tensor4d(values(n, s), [B, H, T, Dh]));
    const bias = tf.tidy(() => attentionBias(tf.tensor2d(KEY_MASK), 0, T));
    const plain = attend(q!, k!, v!, bias, 0.4);
    let taped: Float32Array | undefined;
    tf.grad((x: tf.Tensor) => {
      const out = attend(x as tf.Tensor4D, k!, v!, bias, 0.4);
      taped = out.dataSync() as Float32Array;
      return tf.sum(out);
    })(q!).dispose();
    const bitsOf = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
    expect(bitsOf((await plain.data()) as Float32Array)).toEqual(bitsOf(taped!));
    tf.dispose([q!, k!, v!, bias, plain]);
  });
});
