import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { fusedPrefixAttention, writeRowsInPlace } from './attention-ops.js';
import { fusedGpt2DecodeBlock, gpt2BlockShapes, type Gpt2BlockWeights } from './decode-block-op.js';
import { fusedGelu, fusedLayerNorm } from './fused-ops.js';
import { activate, seeded } from './test-helpers.js';
import { decodeThreadTuning } from './decode-block-threads.js';
import { setWasmThreads, stopWasmThreads, threadStats, wasmThreadsReady } from './threads.js';

const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

/** Random block weights for width D and MLP width F (LayerNorm gains around 1). */
async function weights(D: number, F: number, seed: number): Promise<Gpt2BlockWeights> {
  const shapes = gpt2BlockShapes(D, F);
  const w: Partial<Record<keyof Gpt2BlockWeights, tf.Tensor>> = {};
  for (const [i, [name, shape]] of shapes.entries()) {
    const data = await seeded(shape, seed + i);
    const scale = name.startsWith('ln') ? 0.3 : 0.5;
    w[name] = tf.tensor(
      data.map((x) => (name.endsWith('g') ? 1 : 0) + scale * x),
      shape,
    );
  }
  return w as unknown as Gpt2BlockWeights;
}

/** The block op by op, as @relign/lm's gpt2.ts runs it, writing k/v with writeRowsInPlace. */
function blockOps(
  x: tf.Tensor2D,
  w: Gpt2BlockWeights,
  keys: tf.Tensor4D,
  values: tf.Tensor4D,
  position: number,
  bias: tf.Tensor4D | undefined,
  H: number,
  eps: number,
  scale: number,
): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, D] = x.shape;
    const qkv = tf.fused.matMul({ a: fusedLayerNorm(x, w.ln1g, w.ln1b, eps), b: w.attnW, bias: w.attnB });
    const [q, k, v] = tf.split(tf.reshape(qkv, [B, 3 * H, 1, D / H]), 3, 1) as tf.Tensor4D[];
    writeRowsInPlace(keys, k!, position);
    writeRowsInPlace(values, v!, position);
    const a = fusedPrefixAttention(q!, keys, values, bias, position + 1, scale)!;
    const h = tf.add(x, tf.fused.matMul({ a: tf.reshape(a, [B, D]), b: w.projW, bias: w.projB }));
    const fc = tf.fused.matMul({
      a: fusedLayerNorm(h as tf.Tensor2D, w.ln2g, w.ln2b, eps),
      b: w.fcW,
      bias: w.fcB,
    });
    return tf.add(h, tf.fused.matMul({ a: fusedGelu(fc), b: w.mlpProjW, bias: w.mlpProjB })) as tf.Tensor2D;
  });
}

describe('fusedGpt2DecodeBlock', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  // [B, H, dh, F, cap, position, bias]: dh and F odd or not multiples of the GEMM's 8-column panels.
  const cases: [number, number, number, number, number, number, 'none' | 'rows' | 'shared'][] = [
    [3, 4, 8, 128, 9, 5, 'none'],
    [3, 3, 5, 36, 7, 6, 'rows'],
    [1, 2, 3, 10, 4, 0, 'shared'],
    [16, 4, 32, 512, 20, 11, 'rows'],
  ];

  it.each(cases)(
    'B %i, H %i, dh %i, F %i, cap %i, position %i, bias %s: the bits of the ops, cache rows included',
    async (B, H, dh, F, cap, position, biasKind) => {
      const D = H * dh;
      const w = await weights(D, F, 100 + D);
      const x = tf.tensor2d(await seeded([B, D], 1), [B, D]);
      const past = await seeded([B, H, cap, dh], 2);
      const len = position + 1;
      const bias =
        biasKind === 'none'
          ? undefined
          : tf.tensor4d(
              Array.from({ length: (biasKind === 'rows' ? B : 1) * len }, (_, i) => (i % 3 === 1 ? -1e9 : 0)),
              [biasKind === 'rows' ? B : 1, 1, 1, len],
            );
      const [kf, vf, ko, vo] = [0, 1, 2, 3].map(() => tf.tensor4d(past, [B, H, cap, dh]));
      const scale = 1 / Math.sqrt(dh);
      const fused = fusedGpt2DecodeBlock(x, w, kf!, vf!, position, bias, 1e-5, scale);
      expect(fused).not.toBeNull();
      const ops = blockOps(x, w, ko!, vo!, position, bias, H, 1e-5, scale);
      expect(bits(fused!)).toEqual(bits(ops));
      expect(bits(kf!)).toEqual(bits(ko!));
      expect(bits(vf!)).toEqual(bits(vo!));
      // Positions other than `position` keep the past's values.
      const k = kf!.dataSync();
      expect(k[dh * (cap - 1)]).toBe(position === cap - 1 ? k[dh * (cap - 1)] : past[dh * (cap - 1)]);
      tf.dispose([fused!, ops, x, kf!, vf!, ko!, vo!, ...Object.values(w)]);
      bias?.dispose();
    },
  );

  it('declines (null) under a gradient tape and off wasm; rejects shapes that do not fit', async () => {
    const w = await weights(8, 16, 3);
    const x = tf.zeros([2, 8]) as tf.Tensor2D;
    const kv = tf.zeros([2, 2, 4, 4]) as tf.Tensor4D;
    tf.grad((y: tf.Tensor) => {
      expect(fusedGpt2DecodeBlock(x, w, kv, kv, 1, undefined, 1e-5, 0.5)).toBeNull();
      return tf.sum(y);
    })(tf.ones([1]));
    expect(() => fusedGpt2DecodeBlock(x, w, kv, kv, 4, undefined, 1e-5, 0.5)).toThrow(
      /position 4 is not in \[0, 4\) \(the cache capacity\)/,
    );
    expect(() => fusedGpt2DecodeBlock(x, { ...w, fcB: w.ln1g }, kv, kv, 0, undefined, 1e-5, 0.5)).toThrow(
      /fcB is \[8\], expected \[16\]/,
    );
    const badBias = tf.zeros([2, 1, 1, 3]) as tf.Tensor4D;
    expect(() => fusedGpt2DecodeBlock(x, w, kv, kv, 1, badBias, 1e-5, 0.5)).toThrow(
      /bias \[2,1,1,3\] must be \[2 or 1, 1, 1, 2\]/,
    );
    await tf.setBackend('cpu');
    const [xc, kc] = [tf.zeros([2, 8]) as tf.Tensor2D, tf.zeros([2, 2, 4, 4]) as tf.Tensor4D];
    const wc = Object.fromEntries(Object.entries(w).map(([n, t]) => [n, tf.zeros(t.shape)]));
    expect(
      fusedGpt2DecodeBlock(xc, wc as unknown as Gpt2BlockWeights, kc, kc, 1, undefined, 1e-5, 0.5),
    ).toBeNull();
    tf.dispose([xc, kc, ...Object.values(wc)]);
    await activate('wasm');
    tf.dispose([x, kv, badBias, ...Object.values(w)]);
  });

  it('leaks no tensor (its scratch is freed)', async () => {
    const w = await weights(8, 16, 5);
    const x = tf.ones([2, 8]) as tf.Tensor2D;
    const kv = tf.zeros([2, 2, 4, 4]) as tf.Tensor4D;
    await assertNoLeaks(() => fusedGpt2DecodeBlock(x, w, kv, kv, 2, undefined, 1e-5, 0.5), {
      label: 'fusedGpt2DecodeBlock',
    });
    tf.dispose([x, kv, ...Object.values(w)]);
  });

  it('on 2 threads (resident weights in shared memory) gives the bits of 1 thread, also after a weight changes', async () => {
    const [B, H, dh, F, cap, position] = [5, 2, 8, 40, 6, 3];
    const D = H * dh;
    const w = await weights(D, F, 11);
    const x = tf.tensor2d(await seeded([B, D], 12), [B, D]);
    const past = await seeded([B, H, cap, dh], 13);
    const bias = tf.tensor4d(
      Array.from({ length: B * (position + 1) }, (_, i) => (i % 4 === 2 ? -1e9 : 0)),
      [B, 1, 1, position + 1],
    );
    const run = (wts: Gpt2BlockWeights) => {
      const [k, v] = [0, 1].map(() => tf.tensor4d(past, [B, H, cap, dh]));
      const y = fusedGpt2DecodeBlock(x, wts, k!, v!, position, bias, 1e-5, 0.3)!;
      const out = [bits(y), bits(k!), bits(v!)];
      tf.dispose([y, k!, v!]);
      return out;
    };
    const changed = { ...w, fcW: tf.mul(w.fcW, 1.5) as tf.Tensor2D };
    const one = [run(w), run(changed)];
    const saved = { ...decodeThreadTuning };
    try {
      decodeThreadTuning.minMacs = 0;
      decodeThreadTuning.minCores = 0;
      setWasmThreads(2);
      expect(await wasmThreadsReady()).toBe(2);
      const before = threadStats.products;
      expect(run(w)).toEqual(one[0]);
      // 4 products per block on the pool.
      expect(threadStats.products - before).toBe(4);
      // A new fcW tensor (a training step's result) is a new resident copy, not the stale one.
      expect(run(changed)).toEqual(one[1]);
      expect(run(w)).toEqual(one[0]);
    } finally {
      Object.assign(decodeThreadTuning, saved);
      setWasmThreads(1);
      stopWasmThreads();
    }
    tf.dispose([x, bias, changed.fcW, ...Object.values(w)]);
  });
});
