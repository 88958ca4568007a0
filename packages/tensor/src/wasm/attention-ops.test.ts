import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import {
  fusedMaskedSoftmax,
  fusedPrefixAttention,
  inPlaceWritesAvailable,
  writeRowsInPlace,
} from './attention-ops.js';
import { activate, on, relErr, seeded } from './test-helpers.js';

const MASK = -1e9;

/** A 0 / -1e9 bias of `shape` masking about a third of the keys, and all of row `fullRow` (if given). */
function maskBias(shape: number[], seed: number, fullRow?: number): Float32Array {
  const n = shape[shape.length - 1]!;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const row = Math.floor(i / n);
    out[i] = row === fullRow || s % 3 === 0 ? MASK : 0;
  }
  return out;
}

/** softmax(q k^T * scale + bias) v, unfused (the reference), over k/v's first `length` positions. */
function attentionRef(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor4D | undefined,
  length: number,
  scale: number,
): tf.Tensor {
  const [B, H, , dh] = k.shape;
  const ks = tf.slice(k, [0, 0, 0, 0], [B, H, length, dh]);
  const vs = tf.slice(v, [0, 0, 0, 0], [B, H, length, dh]);
  const raw = tf.mul(tf.matMul(q, ks, false, true), scale);
  return tf.matMul(tf.softmax(bias ? tf.add(raw, bias) : raw), vs);
}

describe('fused masked softmax and prefix attention', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('fusedMaskedSoftmax equals add + softmax on cpu (odd widths, broadcast bias, fully masked rows)', async () => {
    const cases: [number[], number[], number | undefined][] = [
      [[2, 3, 5, 7], [2, 1, 5, 7], 3],
      [[1, 2, 4, 130], [1, 1, 4, 130], 0],
      [[3, 1, 1, 1], [3, 1, 1, 1], undefined],
      [[2, 2, 3, 16], [1, 1, 3, 16], 2],
    ];
    for (const [shape, bshape, full] of cases) {
      const x = Float32Array.from(await seeded(shape, shape[3]!), (v) => v * 4);
      const b = maskBias(bshape, shape[3]!, full);
      const args = () => [tf.tensor4d(x, shape as never), tf.tensor4d(b, bshape as never)] as const;
      const want = await on('cpu', () => tf.softmax(tf.add(...args())));
      const got = await on('wasm', () => fusedMaskedSoftmax(...args()));
      expect(relErr(got, want), `shape ${shape}`).toBeLessThan(1e-6);
      if (full !== undefined) {
        // A row whose keys are all masked is uniform, as with the unfused ops.
        const n = shape[3]!;
        const row = Array.from(got.subarray(full * n, (full + 1) * n));
        for (const p of row) expect(p).toBeCloseTo(1 / n, 6);
      }
      const fallback = await on('cpu', () => fusedMaskedSoftmax(...args()));
      expect(relErr(fallback, want)).toBe(0);
    }
    await activate('wasm');
    const x = tf.randomNormal([2, 3, 5, 7]);
    const b = tf.tensor4d(maskBias([2, 1, 5, 7], 1), [2, 1, 5, 7]);
    const info = await tf.profile(() => fusedMaskedSoftmax(x, b));
    expect(info.kernelNames).toEqual(['RelignMaskedSoftmax']);
    await assertNoLeaks(() => fusedMaskedSoftmax(x, b), { label: 'fusedMaskedSoftmax' });
    tf.dispose([x, b]);
  });

  it('its gradient (one kernel) equals the unfused ops', async () => {
    for (const [shape, bshape] of [
      [
        [2, 3, 5, 7],
        [2, 1, 5, 7],
      ],
      [
        [1, 2, 3, 33],
        [1, 1, 3, 33],
      ],
    ] as const) {
      const x = Float32Array.from(await seeded([...shape], 5), (v) => v * 3);
      const w = await seeded([...shape], 6);
      const b = maskBias([...bshape], 9, 1);
      const loss = (f: (s: tf.Tensor, bias: tf.Tensor) => tf.Tensor) => () => {
        const weights = tf.tensor(w, [...shape]);
        const bias = tf.tensor(b, [...bshape]);
        const g = tf.grads((s: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(s, bb), weights)));
        return g([tf.tensor(x, [...shape]), bias]);
      };
      const [wantX, wantB] = await on(
        'cpu',
        loss((s, bb) => tf.softmax(tf.add(s, bb))),
      );
      const [gotX, gotB] = await on(
        'wasm',
        loss((s, bb) => fusedMaskedSoftmax(s, bb)),
      );
      expect(relErr(gotX!, wantX!), `dx ${shape}`).toBeLessThan(1e-5);
      expect(relErr(gotB!, wantB!), `dbias ${shape}`).toBeLessThan(1e-5);
    }
    await activate('wasm');
    const s = tf.randomNormal([2, 3, 5, 7]);
    const b = tf.zeros([2, 1, 5, 7]);
    const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.square(fusedMaskedSoftmax(t, b))));
    const info = await tf.profile(() => grad(s));
    expect(info.kernelNames).toContain('RelignMaskedSoftmaxGrad');
    expect(info.kernelNames).not.toContain('Softmax');
    await assertNoLeaks(() => grad(s), { label: 'fusedMaskedSoftmax gradient' });
    tf.dispose([s, b]);
  });

  it('fusedPrefixAttention reads the first `length` positions in place (GQA rows, odd dh, masks)', async () => {
    const cases: {
      B: number;
      H: number;
      R: number;
      cap: number;
      len: number;
      dh: number;
      bias?: number[];
    }[] = [
      { B: 2, H: 3, R: 1, cap: 9, len: 6, dh: 8, bias: [2, 1, 1, 6] },
      { B: 2, H: 2, R: 3, cap: 12, len: 12, dh: 5, bias: [2, 1, 3, 12] },
      { B: 1, H: 2, R: 2, cap: 20, len: 7, dh: 32 },
      { B: 3, H: 1, R: 4, cap: 5, len: 1, dh: 3, bias: [1, 1, 4, 1] },
      { B: 2, H: 4, R: 1, cap: 70, len: 67, dh: 16, bias: [2, 1, 1, 67] },
    ];
    for (const c of cases) {
      const q = await seeded([c.B, c.H, c.R, c.dh], c.dh);
      const k = Float32Array.from(await seeded([c.B, c.H, c.cap, c.dh], c.dh + 1), (v) => v * 2);
      const v = await seeded([c.B, c.H, c.cap, c.dh], c.dh + 2);
      // Row 0 of every bias has all keys masked (uniform attention, as with the unfused ops).
      const bias = c.bias ? maskBias(c.bias, c.len, 0) : undefined;
      const scale = 1 / Math.sqrt(c.dh);
      const args = () =>
        [
          tf.tensor4d(q, [c.B, c.H, c.R, c.dh]),
          tf.tensor4d(k, [c.B, c.H, c.cap, c.dh]),
          tf.tensor4d(v, [c.B, c.H, c.cap, c.dh]),
          bias ? tf.tensor4d(bias, c.bias as never) : undefined,
        ] as const;
      const want = await on('cpu', () => attentionRef(...args(), c.len, scale));
      const got = await on('wasm', () => fusedPrefixAttention(...args(), c.len, scale)!);
      expect(relErr(got, want), JSON.stringify(c)).toBeLessThan(1e-5);
      expect(await on('cpu', () => fusedPrefixAttention(...args(), c.len, scale) ?? tf.scalar(-1))).toEqual(
        Float32Array.of(-1),
      );
    }
    await activate('wasm');
    const q = tf.randomNormal([2, 2, 1, 8]) as tf.Tensor4D;
    const kv = tf.randomNormal([2, 2, 10, 8]) as tf.Tensor4D;
    const info = await tf.profile(() => fusedPrefixAttention(q, kv, kv, undefined, 4, 0.5)!);
    expect(info.kernelNames).toEqual(['RelignPrefixAttention']);
    await assertNoLeaks(() => fusedPrefixAttention(q, kv, kv, undefined, 4, 0.5)!, {
      label: 'fusedPrefixAttention',
    });
    // Under a gradient tape it declines (no gradient is registered): the caller uses the unfused ops.
    tf.grad((x: tf.Tensor) => {
      expect(fusedPrefixAttention(x as tf.Tensor4D, kv, kv, undefined, 4, 0.5)).toBeNull();
      return tf.sum(x);
    })(q).dispose();
    expect(() => fusedPrefixAttention(q, kv, kv, undefined, 11, 0.5)).toThrow(/length 11 do not fit/);
    const badBias = tf.zeros([2, 1, 1, 5]) as tf.Tensor4D;
    expect(() => fusedPrefixAttention(q, kv, kv, badBias, 4, 0.5)).toThrow(/bias \[2,1,1,5\] must be/);
    tf.dispose([q, kv, badBias]);
  });

  it('fusedPrefixAttention: a NaN score makes its row NaN (in a block of 4 keys or a single key)', async () => {
    await activate('wasm');
    const [H, len, dh] = [3, 6, 8];
    const k = Float32Array.from(await seeded([1, H, len, dh], 7));
    k[(0 * len + 2) * dh + 3] = NaN; // head 0, key 2: scored in a block of 4 keys
    k[(1 * len + 5) * dh] = NaN; // head 1, key 5: scored alone
    const q = tf.tensor4d(await seeded([1, H, 1, dh], 8), [1, H, 1, dh]);
    const kt = tf.tensor4d(k, [1, H, len, dh]);
    const v = tf.tensor4d(await seeded([1, H, len, dh], 9), [1, H, len, dh]);
    const out = fusedPrefixAttention(q, kt, v, undefined, len, 0.5)!;
    const got = await out.data();
    expect(Array.from(got.subarray(0, 2 * dh)).every(Number.isNaN)).toBe(true);
    expect(Array.from(got.subarray(2 * dh)).every(Number.isFinite)).toBe(true);
    // All scores 0 (a zero maximum): uniform attention, the mean of v.
    const zero = tf.zeros([1, H, 1, dh]) as tf.Tensor4D;
    const k0 = tf.tensor4d(await seeded([1, H, len, dh], 7), [1, H, len, dh]);
    const uniform = fusedPrefixAttention(zero, k0, v, undefined, len, 0.5)!;
    const mean = tf.mean(v, 2);
    expect(relErr(await uniform.data(), await mean.data())).toBeLessThan(1e-6);
    tf.dispose([q, kt, v, out, zero, k0, uniform, mean]);
  });

  it('writeRowsInPlace copies rows into positions [p, p + T) and leaves the rest', async () => {
    await activate('wasm');
    expect(inPlaceWritesAvailable()).toBe(true);
    const dst = tf.zeros([2, 2, 5, 3]) as tf.Tensor4D;
    const src = tf.add(tf.range(0, 2 * 2 * 2 * 3), 1).reshape([2, 2, 2, 3]) as tf.Tensor4D;
    writeRowsInPlace(dst, src, 2);
    const want = await on('cpu', () =>
      tf.pad(tf.add(tf.range(0, 24), 1).reshape([2, 2, 2, 3]), [
        [0, 0],
        [0, 0],
        [2, 1],
        [0, 0],
      ]),
    );
    await activate('wasm');
    expect(Array.from(await dst.data())).toEqual(Array.from(want));
    expect(() => writeRowsInPlace(dst, src, 4)).toThrow(/position \+ T <= capacity/);
    tf.dispose([dst, src]);
    await tf.setBackend('cpu');
    expect(inPlaceWritesAvailable()).toBe(false);
  });
});
