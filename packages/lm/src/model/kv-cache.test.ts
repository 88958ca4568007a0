import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks } from '@relign/tensor/testing';
import type { CausalLM } from './causal-lm.js';
import { modelTypeOf } from './model-config.js';
import { withRandomModel } from './test-helpers.js';

describe.each(TEST_BACKENDS)('KVCache.gather on %s', (backend) => {
  let model: CausalLM;
  withRandomModel(backend, (m) => (model = m));

  it('continuing gathered rows gives the same bits as continuing the whole batch (padded rows too)', () => {
    const ids = [
      [0, 0, 3, 1],
      [2, 7, 1, 8],
      [0, 5, 9, 2],
    ];
    const mask = [
      [0, 0, 1, 1],
      [1, 1, 1, 1],
      [0, 1, 1, 1],
    ];
    const pre = model.forward(ids, { attentionMask: mask, useCache: true });
    const all = model.forward([[4], [6], [11]], { cache: pre.cache! });
    const sub = pre.cache!.gather([2, 0]);
    expect(sub.batchSize).toBe(2);
    expect(Array.from(sub.nextPosition.dataSync())).toEqual([3, 2]);
    const part = model.forward([[11], [4]], { cache: sub });
    const want = tf.tidy(() => tf.gather(all.logits, tf.tensor1d([2, 0], 'int32'), 0).dataSync());
    expect(Array.from(new Uint32Array(part.logits.dataSync().buffer))).toEqual(
      Array.from(new Uint32Array(want.buffer)),
    );
    expect(pre.cache!.isDisposed).toBe(false); // gather leaves the source cache alone
    for (const r of [pre, all, part]) {
      tf.dispose([r.logits, r.hidden]);
      r.cache!.dispose();
    }
    sub.dispose();
  });

  it('rejects bad rows and leaks nothing', async () => {
    const pre = model.forward([[1, 2]], { useCache: true });
    expect(() => pre.cache!.gather([])).toThrow(/rows is empty/);
    expect(() => pre.cache!.gather([1])).toThrow(/not an index in \[0, 1\)/);
    await assertNoLeaks(() => pre.cache!.gather([0, 0]).dispose(), { label: 'KVCache.gather' });
    tf.dispose([pre.logits, pre.hidden]);
    pre.cache!.dispose();
  });
});

/** Last-position logits of a full (uncached) forward over `ids` with `mask`. */
async function lastLogits(model: CausalLM, ids: number[][], mask: number[][]): Promise<Float32Array> {
  const ref = model.forward(ids, { attentionMask: mask });
  const [B, T, V] = ref.logits.shape;
  const last = tf.slice(ref.logits, [0, T - 1, 0], [B, 1, V]);
  const data = (await last.data()) as Float32Array;
  tf.dispose([ref.logits, ref.hidden, last]);
  return data;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return a.length === b.length ? diff / scale : Infinity;
}

const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));

describe.each([
  { name: 'GPT-2 (dh 6)', config: { vocab_size: 19, n_positions: 32, n_embd: 12, n_layer: 2, n_head: 2 } },
  {
    name: 'llama GQA (4 heads, 2 kv heads, dh 6)',
    config: {
      model_type: 'llama',
      vocab_size: 19,
      hidden_size: 24,
      intermediate_size: 20,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 6,
      max_position_embeddings: 64,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
    },
  },
])('preallocated KV cache on wasm: $name', ({ config }) => {
  let model: CausalLM;
  withRandomModel('wasm', (m) => (model = m), config as never, { init: 5, weights: 77 });

  it('decodes in place (no K/V concat, one attention kernel per layer) and equals the full forward', async () => {
    const before = tf.memory().numTensors;
    const L = model.dims.numLayers;
    const ids = [
      [0, 0, 3, 1],
      [2, 7, 1, 8],
      [0, 5, 9, 2],
    ];
    const mask = [
      [0, 0, 1, 1],
      [1, 1, 1, 1],
      [0, 1, 1, 1],
    ];
    const pre = model.forward(ids, { attentionMask: mask, useCache: true, cacheCapacity: 9 });
    let cache = pre.cache!;
    tf.dispose([pre.logits, pre.hidden]);
    expect(cache.capacity).toBe(9);
    expect(cache.keys[0]!.shape[2]).toBe(4); // the used positions only
    const fullIds = ids.map((r) => [...r]);
    const fullMask = mask.map((r) => [...r]);
    for (const step of [
      [7, 8, 9],
      [1, 12, 2],
      [15, 0, 11],
      [6, 5, 4],
      [3, 3, 3],
    ]) {
      step.forEach((t, b) => {
        fullIds[b]!.push(t);
        fullMask[b]!.push(1);
      });
      const input = tf.tensor2d(
        step.map((t) => [t]),
        [3, 1],
        'int32',
      );
      let next: ReturnType<CausalLM['forward']> | undefined;
      const info = await tf.profile(() => {
        next = model.forward(input, { cache });
        return [next.logits, next.hidden];
      });
      input.dispose();
      // Old code: a Concat per layer for K and for V, each [B, Hkv, length, Dh]; now none.
      const length = fullIds[0]!.length;
      const kvConcats = info.kernels.filter(
        (k) => k.name === 'Concat' && k.outputShapes[0]?.length === 4 && k.outputShapes[0][2] === length,
      );
      expect(kvConcats).toEqual([]);
      // One attention kernel per layer: GPT-2 runs its whole block (attention included) as one kernel.
      const gpt2 = modelTypeOf(model.config) === 'gpt2';
      const attention = gpt2 ? 'RelignGpt2DecodeBlock' : 'RelignPrefixAttention';
      const names = info.kernels.map((k) => k.name);
      expect(names.filter((n) => n === attention).length).toBe(L);
      expect(next!.cache!.capacity).toBe(9);
      const want = await lastLogits(model, fullIds, fullMask);
      expect(relErr(await next!.logits.data(), want)).toBeLessThan(1e-5);
      tf.dispose([next!.logits, next!.hidden]);
      cache.dispose();
      cache = next!.cache!;
    }
    // The keys/values a user reads are the used positions, equal to the full forward's (layer 0: deeper
    // layers differ at padded positions, whose values have no meaning).
    const full = model.forward(fullIds, { attentionMask: fullMask, useCache: true });
    expect(cache.keys[1]!.shape).toEqual(full.cache!.keys[1]!.shape);
    expect(relErr(await cache.keys[0]!.data(), await full.cache!.keys[0]!.data())).toBeLessThan(1e-5);
    expect(relErr(await cache.values[0]!.data(), await full.cache!.values[0]!.data())).toBeLessThan(1e-5);
    tf.dispose([full.logits, full.hidden]);
    full.cache!.dispose();
    // Full: the next step copies into a larger store.
    const more = model.forward([[1], [2], [3]], { cache });
    expect(more.cache!.capacity).toBeGreaterThan(10);
    tf.dispose([more.logits, more.hidden]);
    more.cache!.dispose();
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('compaction (gather) and a second continuation of one cache keep every row exact', async () => {
    const before = tf.memory().numTensors;
    const ids = [
      [0, 4, 3, 1],
      [2, 7, 1, 8],
      [0, 0, 9, 2],
    ];
    const mask = [
      [0, 1, 1, 1],
      [1, 1, 1, 1],
      [0, 0, 1, 1],
    ];
    const pre = model.forward(ids, { attentionMask: mask, useCache: true, cacheCapacity: 12 });
    tf.dispose([pre.logits, pre.hidden]);
    const a = model.forward([[5], [6], [7]], { cache: pre.cache! }); // in place
    // A second continuation of the same cache must not overwrite a's rows: it gets its own store.
    const b = model.forward([[8], [9], [10]], { cache: pre.cache! });
    const wantB = await lastLogits(
      model,
      ids.map((r, i) => [...r, [8, 9, 10][i]!]),
      mask.map((r) => [...r, 1]),
    );
    expect(relErr(await b.logits.data(), wantB)).toBeLessThan(1e-5);
    const a2 = model.forward([[1], [2], [3]], { cache: a.cache! });
    const wantA2 = await lastLogits(
      model,
      ids.map((r, i) => [...r, [5, 6, 7][i]!, [1, 2, 3][i]!]),
      mask.map((r) => [...r, 1, 1]),
    );
    expect(relErr(await a2.logits.data(), wantA2)).toBeLessThan(1e-5);
    // Compaction: rows [2, 0] of a's cache continue with the same bits as in the whole batch.
    const sub = a.cache!.gather([2, 0]);
    expect(sub.capacity).toBe(12);
    const part = model.forward([[3], [1]], { cache: sub });
    expect(part.cache!.capacity).toBe(12); // the gathered store is extended in place
    const whole = (await a2.logits.data()) as Float32Array;
    const V = model.config.vocab_size;
    const want = new Float32Array([...whole.subarray(2 * V, 3 * V), ...whole.subarray(0, V)]);
    expect(bits((await part.logits.data()) as Float32Array)).toEqual(bits(want));
    for (const r of [a, b, a2, part]) {
      tf.dispose([r.logits, r.hidden]);
      r.cache!.dispose();
    }
    sub.dispose();
    pre.cache!.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('without cacheCapacity the storage doubles; a gradient tape keeps the concat path', async () => {
    const pre = model.forward([[1, 2, 3]], { useCache: true });
    expect(pre.cache!.capacity).toBe(3); // a prefill without a hint copies nothing
    const s1 = model.forward([[4]], { cache: pre.cache! });
    expect(s1.cache!.capacity).toBe(20); // max(2 * 4, 4 + 16)
    const s2 = model.forward([[5]], { cache: s1.cache! });
    expect(s2.cache!.capacity).toBe(20);
    const wantS2 = await lastLogits(model, [[1, 2, 3, 4, 5]], [[1, 1, 1, 1, 1]]);
    expect(relErr(await s2.logits.data(), wantS2)).toBeLessThan(1e-5);
    let taped: ReturnType<CausalLM['forward']> | undefined;
    tf.variableGrads(() => {
      taped = model.forward([[6]], { cache: s2.cache! });
      return tf.sum(taped.logits);
    }).value.dispose();
    expect(taped!.cache!.capacity).toBe(6);
    for (const r of [pre, s1, s2, taped!]) {
      tf.dispose([r.logits, r.hidden]);
      r.cache!.dispose();
    }
    expect(() => model.forward([[1]], { useCache: true, cacheCapacity: 0 })).toThrow(/cacheCapacity must be/);
  });
});
