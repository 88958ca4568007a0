import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import {
  attentionBias,
  causalBias,
  keyPaddingBias,
  mergeHeads,
  splitHeads,
  splitQkvHeads,
} from './attention.js';
import { gelu, layerNorm, linear } from './layers.js';
import { geluRef, maxAbsDiff } from './test-helpers.js';

describe.each(TEST_BACKENDS)('layers on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('gelu (sigmoid form) equals the tanh form 0.5x(1+tanh(...)) within 1e-6', () => {
    const xs = Array.from({ length: 161 }, (_, i) => -8 + i * 0.1);
    const got = tf.tidy(() => gelu(tf.tensor1d(xs)).dataSync());
    expect(maxAbsDiff(got, xs.map(geluRef))).toBeLessThan(1e-6);
    // Hand values: gelu(0) = 0, gelu(1) = 0.8411920, gelu(-1) = -0.1588080.
    const [a, b, c] = tf.tidy(() => Array.from(gelu(tf.tensor1d([0, 1, -1])).dataSync()));
    expect(a).toBe(0);
    expect(b).toBeCloseTo(0.841192, 6);
    expect(c).toBeCloseTo(-0.158808, 6);
  });

  it('layerNorm normalises with biased variance, then scales and shifts', () => {
    // Row [1, 2, 3, 6]: mean 3, biased var (4+1+0+9)/4 = 3.5.
    const got = tf.tidy(() =>
      layerNorm(
        tf.tensor2d([[1, 2, 3, 6]]),
        tf.tensor1d([1, 2, 1, 1]),
        tf.tensor1d([0, 0, 0, 10]),
        0,
      ).dataSync(),
    );
    const s = Math.sqrt(3.5);
    expect(maxAbsDiff(got, [-2 / s, (2 * -1) / s, 0, 3 / s + 10])).toBeLessThan(1e-5);
  });

  it('attentionBias is causal (offset by the cached length) and masks padded keys', () => {
    // B=1, past 2, T=2, keys 4; key 0 is padding.
    const bias = tf.tidy(() => attentionBias(tf.tensor2d([[0, 1, 1, 1]]), 2, 2).arraySync());
    const N = -1e9;
    expect(bias[0]![0]).toEqual([
      [N, 0, 0, N],
      [N, 0, 0, 0],
    ]);
  });

  it('linear equals x @ w + b, as a direct kernel (inference) and under a gradient tape', () => {
    const x = tf.tensor2d([
      [1, 2, 3],
      [-1, 0, 2],
    ]);
    const w = tf.tensor2d([
      [1, 0],
      [0, 1],
      [2, -1],
    ]);
    const b = tf.tensor1d([0.5, -0.5]);
    // By hand: [1+6, 2-3] + b, [-1+4, 0-2] + b.
    const want = [7.5, -1.5, 3.5, -2.5];
    const direct = linear(x, w, b);
    expect(Array.from(direct.dataSync())).toEqual(want);
    const dw = tf.grad((ww: tf.Tensor) => {
      const y = linear(x, ww as tf.Tensor2D, b);
      expect(Array.from(y.dataSync())).toEqual(want);
      return tf.sum(y);
    })(w);
    // d sum(x w) / dw[i][j] = sum over rows of x[:, i].
    expect(Array.from(dw.dataSync())).toEqual([0, 0, 2, 2, 5, 5]);
    tf.dispose([x, w, b, direct, dw]);
  });

  it('causalBias and keyPaddingBias equal attentionBias where they apply', () => {
    const N = -1e9;
    // No padding: the causal part alone, offset by the cached length (past 1, T 2, keys 3).
    const causal = tf.tidy(() => causalBias(1, 2).arraySync());
    expect(causal).toEqual([
      [
        [
          [0, 0, N],
          [0, 0, 0],
        ],
      ],
    ]);
    const viaFull = tf.tidy(() => attentionBias(tf.ones([1, 3]), 1, 2).arraySync());
    expect(causal).toEqual(viaFull);
    // One query per row (the last position): only padded keys are masked, per row.
    const keyMask = [
      [0, 1, 1, 1],
      [1, 1, 0, 1],
    ];
    const pad = tf.tidy(() => keyPaddingBias(tf.tensor2d(keyMask)).arraySync());
    const viaAttention = tf.tidy(() => attentionBias(tf.tensor2d(keyMask), 3, 1).arraySync());
    expect(pad).toEqual(viaAttention);
    expect(pad[1]![0]![0]).toEqual([0, 0, N, 0]);
  });

  it('splitQkvHeads equals splitting q, k, v and then the heads (one token per row)', () => {
    const B = 2;
    const H = 2;
    const D = 4;
    const qkv = tf.reshape(tf.range(0, B * 3 * D), [B, 3 * D]) as tf.Tensor2D;
    const got = splitQkvHeads(qkv, H);
    const want = tf.split(qkv, 3, 1).map((p) => splitHeads(p as tf.Tensor2D, B, 1, H));
    for (let i = 0; i < 3; i++) {
      expect(got[i]!.shape).toEqual([B, H, 1, D / H]);
      expect(Array.from(got[i]!.dataSync())).toEqual(Array.from(want[i]!.dataSync()));
    }
    // k of batch 1, head 1 = row 1, columns D + 2..D + 3.
    expect(Array.from(tf.tidy(() => tf.slice(got[1]!, [1, 1, 0, 0], [1, 1, 1, 2]).dataSync()))).toEqual([
      3 * D + D + 2,
      3 * D + D + 3,
    ]);
    tf.dispose([qkv, ...got, ...want]);
  });

  it('splitHeads / mergeHeads are inverse and put head h in columns h*Dh..(h+1)*Dh', () => {
    for (const T of [1, 3]) {
      const B = 2;
      const H = 2;
      const D = 4;
      const x = tf.reshape(tf.range(0, B * T * D), [B * T, D]) as tf.Tensor2D;
      const heads = splitHeads(x, B, T, H);
      expect(heads.shape).toEqual([B, H, T, 2]);
      // batch 1, head 1, time 0 = row T (first row of batch 1), columns 2..3.
      expect(Array.from(tf.tidy(() => tf.slice(heads, [1, 1, 0, 0], [1, 1, 1, 2]).dataSync()))).toEqual([
        T * D + 2,
        T * D + 3,
      ]);
      const back = mergeHeads(heads);
      expect(Array.from(back.dataSync())).toEqual(Array.from(x.dataSync()));
      tf.dispose([x, heads, back]);
    }
  });
});
