import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { CausalLM } from './causal-lm.js';
import { randomizeWeights } from './test-helpers.js';

const SMALL = { vocab_size: 13, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2 };

describe.each(TEST_BACKENDS)('KVCache.gather on %s', (backend) => {
  let model: CausalLM;
  beforeAll(async () => {
    await useBackend(backend);
    model = CausalLM.create(SMALL, 7);
    randomizeWeights(model, 123);
  });
  afterAll(() => model.dispose());

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
