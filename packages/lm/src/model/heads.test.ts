import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { CausalLM } from './causal-lm.js';
import { ScalarHead } from './heads.js';
import { readSafetensors, writeSafetensors } from './io.js';
import { maxAbsDiff } from './test-helpers.js';

describe.each(TEST_BACKENDS)('ScalarHead on %s', (backend) => {
  let dir: string;
  beforeAll(async () => {
    await useBackend(backend);
    dir = await mkdtemp(join(tmpdir(), 'relign-head-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('apply(hidden [B,T,D]) = hidden . w + b, shape [B,T]', () => {
    const head = ScalarHead.create(3, { seed: 1 });
    head.bias!.assign(tf.tensor1d([0.5]));
    const w = Array.from(head.weight.dataSync());
    const hidden = tf.tensor3d([
      [
        [1, 2, 3],
        [0, -1, 0],
      ],
      [
        [2, 0, 0],
        [1, 1, 1],
      ],
    ]);
    const y = head.apply(hidden);
    expect(y.shape).toEqual([2, 2]);
    const rows = [
      [1, 2, 3],
      [0, -1, 0],
      [2, 0, 0],
      [1, 1, 1],
    ];
    const want = rows.map((r) => r.reduce((s, v, i) => s + v * w[i]!, 0.5));
    expect(maxAbsDiff(y.dataSync(), want)).toBeLessThan(1e-6);
    expect(() => head.apply(tf.zeros([1, 2, 4]) as tf.Tensor3D)).toThrow(/hidden must be \[B, T, 3\]/);
    tf.dispose([hidden, y]);
    head.dispose();
  });

  it('is deterministic under its seed', () => {
    const a = ScalarHead.create(16, { seed: 3 });
    const b = ScalarHead.create(16, { seed: 3 });
    const c = ScalarHead.create(16, { seed: 4 });
    expect(Array.from(a.weight.dataSync())).toEqual(Array.from(b.weight.dataSync()));
    expect(maxAbsDiff(a.weight.dataSync(), c.weight.dataSync())).toBeGreaterThan(0);
    [a, b, c].forEach((h) => h.dispose());
  });

  it('save/load round trip in torch Linear layout ([1, D] weight) under its prefix', async () => {
    const head = ScalarHead.create(5, { seed: 2, prefix: 'v_head' });
    head.bias!.assign(tf.tensor1d([-0.25]));
    const path = join(dir, 'v_head.safetensors');
    await head.save(path);
    const file = await readSafetensors(path);
    expect([...file.tensors.keys()].sort()).toEqual(['v_head.bias', 'v_head.weight']);
    expect(file.tensors.get('v_head.weight')!.shape).toEqual([1, 5]);
    const back = await ScalarHead.load(path, { prefix: 'v_head', trainable: false });
    expect(Array.from(back.weight.dataSync())).toEqual(Array.from(head.weight.dataSync()));
    expect(back.bias!.dataSync()[0]).toBe(-0.25);
    expect(back.trainableVariables().size).toBe(0);
    expect([...head.variables().keys()]).toEqual(['v_head.weight', 'v_head.bias']);
    await expect(ScalarHead.load(path)).rejects.toThrow(/has no tensor score\.weight.*v_head\.weight/);
    head.dispose();
    back.dispose();
  });

  it('a bias-free head (docs/algorithms.md §2.2) applies, saves and loads without a bias', async () => {
    const head = ScalarHead.create(2, { seed: 5, bias: false });
    expect(head.bias).toBeUndefined();
    expect([...head.variables().keys()]).toEqual(['score.weight']);
    const w = Array.from(head.weight.dataSync());
    const hidden = tf.tensor3d([[[1, -2]]]);
    const y = head.apply(hidden);
    expect(y.dataSync()[0]).toBeCloseTo(w[0]! - 2 * w[1]!, 6);
    const path = join(dir, 'nobias.safetensors');
    await head.save(path);
    expect([...(await readSafetensors(path)).tensors.keys()]).toEqual(['score.weight']);
    const back = await ScalarHead.load(path);
    expect(back.bias).toBeUndefined();
    expect(Array.from(back.weight.dataSync())).toEqual(w);
    tf.dispose([hidden, y]);
    [head, back].forEach((h) => h.dispose());
  });

  it('loads an HF score.weight without bias and rejects a bad shape', async () => {
    const path = join(dir, 'score.safetensors');
    await writeSafetensors(path, {
      'score.weight': { dtype: 'float32', shape: [1, 3], data: new Float32Array([1, 2, 3]) },
    });
    const head = await ScalarHead.load(path);
    expect(Array.from(head.weight.dataSync())).toEqual([1, 2, 3]);
    expect(head.bias).toBeUndefined();
    head.dispose();
    await writeSafetensors(path, {
      'score.weight': { dtype: 'float32', shape: [2, 3], data: new Float32Array(6) },
    });
    await expect(ScalarHead.load(path)).rejects.toThrow(
      /score\.weight has float32 shape \[2,3\], expected float32 \[1, D\]/,
    );
  });

  it('clone is independent; gradients flow to the head and through hidden to the model', async (ctx) => {
    const head = ScalarHead.create(8, { seed: 9 });
    const frozen = head.clone({ trainable: false });
    head.weight.assign(tf.zerosLike(head.weight));
    expect(maxAbsDiff(frozen.weight.dataSync(), new Float32Array(8))).toBeGreaterThan(0);
    expect(frozen.weight.trainable).toBe(false);
    head.weight.assign(frozen.weight);

    if (backend === 'wasm' && tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
      frozen.dispose();
      head.dispose();
      ctx.skip(); // the embedding gradient needs @relign/tensor's wasm UnsortedSegmentSum
    }
    const model = CausalLM.create({ vocab_size: 7, n_positions: 4, n_embd: 8, n_layer: 1, n_head: 2 }, 1);
    const { value, grads } = tf.variableGrads(() =>
      tf.tidy(() => {
        const { hidden } = model.forwardHidden([[1, 2, 3]]);
        return tf.mean(tf.square(tf.sub(head.apply(hidden), 1))) as tf.Scalar;
      }),
    );
    expect(Object.keys(grads)).toContain(head.weight.name);
    expect(Object.keys(grads)).toContain(model.variables().get('h.0.attn.c_attn.weight')!.name);
    expect(Object.keys(grads)).not.toContain(frozen.weight.name);
    for (const g of Object.values(grads)) expect(g.dataSync().every(Number.isFinite)).toBe(true);
    tf.dispose([value, ...Object.values(grads)]);

    const hidden = tf.ones([2, 3, 8]) as tf.Tensor3D;
    await assertNoLeaks(() => head.apply(hidden), { label: 'ScalarHead.apply' });
    hidden.dispose();
    [model, head, frozen].forEach((m) => m.dispose());
  });
});
