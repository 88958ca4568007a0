import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { readSafetensors } from '@relign/tensor';
import { CausalLM } from '../model/index.js';
import { createRng } from '../model/init.js';
import { randomizeWeights } from '../model/test-helpers.js';
import { LoraAdapter } from './adapter.js';
import { attachLora, detachLora, loraAdapterOf, loraBaseModel, mergeAndUnload } from './attach.js';
import { resolveLoraOptions } from './config.js';
import { loadLoraAdapter, peftKey, saveLoraAdapter } from './peft.js';

const SMALL = { vocab_size: 13, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2 };
const IDS = [
  [1, 2, 3, 4],
  [5, 6, 7, 8],
];

/** Largest |a - b| over (nested) arrays of equal shape. */
function maxAbsDiff(a: unknown, b: unknown): number {
  const fa = [a].flat(Infinity) as number[];
  const fb = [b].flat(Infinity) as number[];
  if (fa.length !== fb.length) throw new Error(`maxAbsDiff: sizes ${fa.length} and ${fb.length} differ`);
  return fa.reduce((m, v, i) => Math.max(m, Math.abs(v - fb[i]!)), 0);
}

function logitsOf(model: CausalLM, ids: number[][] = IDS): number[][][] {
  const { logits, hidden } = model.forward(ids);
  hidden.dispose();
  const out = logits.arraySync();
  logits.dispose();
  return out;
}

/** Gives every B non-zero values (at init B = 0, so the adapter would be invisible). */
function randomizeB(adapter: LoraAdapter, seed: number, std = 0.3): void {
  const rng = createRng(seed);
  for (const [name, v] of adapter.variables()) {
    if (!name.endsWith('lora_B.weight')) continue;
    const data = Float32Array.from({ length: v.size }, () => rng.normal(0, std));
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
}

function host(vars: Map<string, tf.Variable>): Map<string, Float32Array> {
  return new Map([...vars].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
}

describe.each(TEST_BACKENDS)('LoRA adapter math on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('delta is scaling * x Aᵀ Bᵀ (checked in float64 loops), null for other modules', () => {
    const config = resolveLoraOptions({ r: 3, loraAlpha: 6 }, ['q_proj']);
    const adapter = new LoraAdapter(
      [{ name: 'q_proj', inFeatures: 5, outFeatures: 4, fanInFanOut: false }],
      config,
    );
    randomizeB(adapter, 1);
    const A = adapter.variables().get('q_proj.lora_A.weight')!;
    const B = adapter.variables().get('q_proj.lora_B.weight')!;
    expect(A.shape).toEqual([3, 5]);
    expect(B.shape).toEqual([4, 3]);
    const a = A.arraySync() as number[][];
    const b = B.arraySync() as number[][];
    const xs = [
      [0.5, -1, 2, 0.25, -0.75],
      [1, 1, -1, 3, 0],
    ];
    const x = tf.tensor2d(xs);
    const d = adapter.delta('q_proj', x, { training: false })!;
    const expected = xs.map((row) =>
      Array.from({ length: 4 }, (_, o) => {
        let s = 0;
        for (let k = 0; k < 3; k++) {
          let ax = 0;
          for (let i = 0; i < 5; i++) ax += a[k]![i]! * row[i]!;
          s += b[o]![k]! * ax;
        }
        return 2 * s; // alpha / r = 6 / 3
      }),
    );
    expect(maxAbsDiff(d.arraySync(), expected)).toBeLessThan(1e-5);
    expect(adapter.delta('k_proj', x, { training: false })).toBeNull();
    expect(adapter.withAdaptersDisabled(() => adapter.delta('q_proj', x, { training: false }))).toBeNull();
    d.dispose();
    x.dispose();
    adapter.dispose();
  });

  it('initialises A in U(-1/sqrt(in), 1/sqrt(in)) from the seed and B at zero', () => {
    const specs = [{ name: 'up_proj', inFeatures: 16, outFeatures: 6, fanInFanOut: false }];
    const one = new LoraAdapter(specs, resolveLoraOptions({ r: 4, seed: 5 }, ['up_proj']));
    const two = new LoraAdapter(specs, resolveLoraOptions({ r: 4, seed: 5 }, ['up_proj']));
    const a = one.variables().get('up_proj.lora_A.weight')!.dataSync();
    expect(Array.from(a)).toEqual(Array.from(two.variables().get('up_proj.lora_A.weight')!.dataSync()));
    expect(Math.max(...Array.from(a, Math.abs))).toBeLessThanOrEqual(0.25);
    expect(Math.max(...Array.from(a, Math.abs))).toBeGreaterThan(0.15);
    expect(Array.from(one.variables().get('up_proj.lora_B.weight')!.dataSync()).every((v) => v === 0)).toBe(
      true,
    );
    one.dispose();
    two.dispose();
  });

  it('applies dropout to the adapter input only when training', () => {
    const config = resolveLoraOptions({ r: 2, loraDropout: 0.5 }, ['fc']);
    const adapter = new LoraAdapter(
      [{ name: 'fc', inFeatures: 64, outFeatures: 3, fanInFanOut: false }],
      config,
    );
    randomizeB(adapter, 2);
    const x = tf.ones([4, 64]) as tf.Tensor2D;
    const A = adapter.variables().get('fc.lora_A.weight')!;
    const B = adapter.variables().get('fc.lora_B.weight')!;
    const plain = tf.tidy(() =>
      tf.mul(tf.matMul(tf.matMul(x, A, false, true), B, false, true), adapter.scaling),
    );
    const evalD = adapter.delta('fc', x, { training: false })!;
    const trainD = adapter.delta('fc', x, { training: true })!;
    expect(maxAbsDiff(evalD.arraySync(), plain.arraySync())).toBeLessThan(1e-5);
    expect(maxAbsDiff(trainD.arraySync(), plain.arraySync())).toBeGreaterThan(1e-3);
    tf.dispose([x, plain, evalD, trainD]);
    adapter.dispose();
  });

  it('merges B A into an nn.Linear [out, in] weight and (B A)ᵀ into a Conv1D [in, out] weight', () => {
    for (const fanInFanOut of [false, true]) {
      const config = resolveLoraOptions({ r: 2, loraAlpha: 5 }, ['m']);
      const adapter = new LoraAdapter([{ name: 'm', inFeatures: 5, outFeatures: 3, fanInFanOut }], config);
      randomizeB(adapter, 3);
      const W = tf.randomNormal(fanInFanOut ? [5, 3] : [3, 5], 0, 1, 'float32', 4) as tf.Tensor2D;
      const x = tf.randomNormal([6, 5], 0, 1, 'float32', 5) as tf.Tensor2D;
      const merged = adapter.mergedWeights((n) => (n === 'm.weight' ? W : undefined));
      const M = merged.get('m.weight')!;
      const [viaMerge, viaHook] = tf.tidy(() => {
        const d = adapter.delta('m', x, { training: false })!;
        const base = tf.matMul(x, W, false, !fanInFanOut);
        return [tf.matMul(x, M, false, !fanInFanOut), tf.add(base, d)];
      });
      expect(maxAbsDiff(viaMerge!.arraySync(), viaHook!.arraySync())).toBeLessThan(1e-5);
      tf.dispose([W, x, M, viaMerge!, viaHook!]);
      adapter.dispose();
    }
  });
});

describe('LoRA on a GPT-2 CausalLM (cpu)', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'relign-lora-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  function makeModel(seed = 7): CausalLM {
    const m = CausalLM.create(SMALL, seed);
    randomizeWeights(m, 100 + seed);
    return m;
  }

  it('targets c_attn, c_proj and c_fc by default, freezes the base and starts equal to it', () => {
    const model = makeModel();
    const before = logitsOf(model);
    const adapter = attachLora(model, { r: 4, loraAlpha: 8 });
    expect(loraAdapterOf(model)).toBe(adapter);
    expect(adapter.moduleSpecs().map((m) => m.name)).toEqual([
      'h.0.attn.c_attn',
      'h.0.attn.c_proj',
      'h.0.mlp.c_fc',
      'h.0.mlp.c_proj',
      'h.1.attn.c_attn',
      'h.1.attn.c_proj',
      'h.1.mlp.c_fc',
      'h.1.mlp.c_proj',
    ]);
    expect(adapter.moduleSpecs()[0]).toMatchObject({ inFeatures: 8, outFeatures: 24, fanInFanOut: true });
    expect(adapter.moduleSpecs()[2]).toMatchObject({ inFeatures: 8, outFeatures: 32, fanInFanOut: true });
    // The optimizers' view: only A and B are trainable.
    expect([...model.trainableVariables().keys()]).toEqual([...adapter.variables().keys()]);
    expect(maxAbsDiff(logitsOf(model), before)).toBeLessThan(1e-5);
    expect(() => attachLora(model)).toThrow(/already has a projection hook/);
    detachLora(model);
    expect(adapter.isDisposed).toBe(true);
    expect(model.projectionHook).toBeNull();
    model.dispose();
  });

  it('explains a targetModules that matches nothing', () => {
    const model = makeModel();
    expect(() => attachLora(model, { targetModules: ['q_proj'] })).toThrow(/no linear module matches/);
    expect(() => attachLora(model, { r: 0 })).toThrow(/options\.r must be a positive integer/);
    expect(model.projectionHook).toBeNull();
    model.dispose();
  });

  it('the base view has the adapters off, shares the variables (no copy) and has nothing to train', () => {
    const model = makeModel();
    const pristine = model.clone({ trainable: false });
    const adapter = attachLora(model, { r: 2, targetModules: ['c_attn', 'c_fc'] });
    randomizeB(adapter, 9);
    const tensorsBefore = tf.memory().numTensors;
    const base = loraBaseModel(model);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(base).toBeInstanceOf(CausalLM);
    expect(base).not.toBe(model);
    for (const [name, v] of model.variables()) expect(base.variables().get(name)).toBe(v);
    expect(base.trainableVariables().size).toBe(0);
    const refLogits = logitsOf(pristine);
    expect(maxAbsDiff(logitsOf(base), refLogits)).toBeLessThan(1e-5);
    expect(maxAbsDiff(logitsOf(model), refLogits)).toBeGreaterThan(1e-3);
    expect(adapter.enabled).toBe(true); // only disabled during the base view's forward
    base.dispose(); // a no-op: the weights are the LoRA model's
    expect(model.isDisposed).toBe(false);
    expect(() => base.setTrainable(true)).toThrow(/frozen/);
    pristine.dispose();
    detachLora(model);
    model.dispose();
  });

  it('a training step changes only A and B; the base weights stay bit-identical', () => {
    const model = makeModel();
    const adapter = attachLora(model, { r: 2, loraDropout: 0.1 });
    const baseBefore = host(model.variables());
    const loraBefore = host(adapter.variables());
    const opt = tf.train.adam(0.05);
    const vars = [...model.trainableVariables().values()];
    const ids = tf.tensor2d(IDS, undefined, 'int32');
    const labels = tf.oneHot(tf.tensor1d([2, 3, 4, 5, 6, 7, 8, 9], 'int32'), SMALL.vocab_size);
    const step = () =>
      opt.minimize(
        () => {
          const { logits, hidden } = model.forward(ids);
          hidden.dispose();
          return tf.losses.softmaxCrossEntropy(labels, tf.reshape(logits, [8, SMALL.vocab_size]));
        },
        false,
        vars,
      );
    // Two steps: the first moves only B (A's gradient is zero while B = 0), the second A too.
    step();
    step();
    for (const [name, v] of model.variables()) {
      expect(Array.from(v.dataSync()), name).toEqual(Array.from(baseBefore.get(name)!));
    }
    const changed = [...adapter.variables()].filter(
      ([name, v]) => maxAbsDiff(Array.from(v.dataSync()), Array.from(loraBefore.get(name)!)) > 0,
    );
    expect(changed.length).toBe(adapter.variables().size); // every A and B moved
    return assertNoLeaks(step, { label: 'a LoRA training step' }).finally(() => {
      opt.dispose();
      tf.dispose([ids, labels]);
      detachLora(model);
      model.dispose();
    });
  });

  it('attachLora then detachLora leaves no tensor behind', () => {
    const model = makeModel();
    const before = tf.memory().numTensors;
    attachLora(model, { r: 2 });
    detachLora(model);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('forward with an adapter leaks no tensors', async () => {
    const model = makeModel();
    attachLora(model, { r: 2 });
    const base = loraBaseModel(model);
    await assertNoLeaks(() => model.forward(IDS), { label: 'LoRA forward' });
    await assertNoLeaks(() => base.forward(IDS), { label: 'base-view forward' });
    detachLora(model);
    model.dispose();
  });

  it('mergeAndUnload gives the adapted logits with no hook, in the normal layout', async () => {
    const model = makeModel();
    const adapter = attachLora(model, { r: 3, loraAlpha: 12 });
    randomizeB(adapter, 11);
    const adapted = logitsOf(model);
    const shapes = new Map([...model.variables()].map(([n, v]) => [n, v.shape]));
    mergeAndUnload(model);
    expect(model.projectionHook).toBeNull();
    expect(adapter.isDisposed).toBe(true);
    expect(maxAbsDiff(logitsOf(model), adapted)).toBeLessThan(1e-4);
    const out = join(dir, 'merged');
    await model.save(out);
    const reloaded = await CausalLM.fromPretrained(out);
    for (const [n, v] of reloaded.variables()) expect(v.shape).toEqual(shapes.get(n));
    expect(maxAbsDiff(logitsOf(reloaded), adapted)).toBeLessThan(1e-4);
    reloaded.dispose();
    model.dispose();
  });

  it("saves PEFT's layout (key names, shapes, adapter_config.json) and loads it back", async () => {
    const model = makeModel();
    const adapter = attachLora(model, {
      r: 4,
      loraAlpha: 16,
      loraDropout: 0.05,
      baseModelNameOrPath: 'gpt2',
    });
    randomizeB(adapter, 12);
    const adapted = logitsOf(model);
    const out = join(dir, 'adapter');
    await saveLoraAdapter(adapter, out);

    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 4,
      lora_alpha: 16,
      lora_dropout: 0.05,
      target_modules: ['c_attn', 'c_proj', 'c_fc'],
      base_model_name_or_path: 'gpt2',
      bias: 'none',
      fan_in_fan_out: true,
    });
    const { tensors, metadata } = await readSafetensors(join(out, 'adapter_model.safetensors'));
    expect(metadata).toEqual({ format: 'pt' });
    expect(tensors.size).toBe(16);
    expect(tensors.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')?.shape).toEqual([4, 8]);
    expect(tensors.get('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight')?.shape).toEqual([24, 4]);
    expect(tensors.get('base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight')?.shape).toEqual([4, 32]);
    expect(tensors.get('base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight')?.shape).toEqual([8, 4]);

    // A fresh copy of the same base with the adapter loaded computes the adapted function.
    const fresh = makeModel();
    const loaded = await loadLoraAdapter(fresh, out);
    expect(loaded.config).toMatchObject({
      r: 4,
      loraAlpha: 16,
      loraDropout: 0.05,
      baseModelNameOrPath: 'gpt2',
    });
    expect(maxAbsDiff(logitsOf(fresh), adapted)).toBeLessThan(1e-5);
    detachLora(fresh);
    fresh.dispose();
    detachLora(model);
    model.dispose();
  });

  it('names Llama/Qwen modules under model. and refuses adapters it cannot reproduce', async () => {
    expect(peftKey('model.layers.0.self_attn.q_proj', 'A')).toBe(
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
    );
    expect(peftKey('h.3.mlp.c_fc', 'B')).toBe('base_model.model.transformer.h.3.mlp.c_fc.lora_B.weight');
    const model = makeModel();
    const adapter = attachLora(model, { r: 2 });
    const out = join(dir, 'dora');
    await saveLoraAdapter(adapter, out);
    detachLora(model);
    const path = join(out, 'adapter_config.json');
    const config = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...config, use_dora: true }));
    await expect(loadLoraAdapter(model, out)).rejects.toThrow(/adapter_config\.json: use_dora is true/);
    await writeFile(path, JSON.stringify({ ...config, r: 3 }));
    await expect(loadLoraAdapter(model, out)).rejects.toThrow(
      /lora_A\.weight has shape \[2,8\], expected \[3,8\]/,
    );
    expect(model.projectionHook).toBeNull();
    model.dispose();
  });
});

describe('LoRA on Llama-family CausalLMs (cpu)', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'relign-lora-llama-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each(['llama', 'qwen2', 'qwen3'] as const)(
    '%s: adapts the 7 projections, merges [out, in] weights and saves model.layers.* PEFT keys',
    async (modelType) => {
      const model = CausalLM.create(
        {
          model_type: modelType,
          vocab_size: 17,
          hidden_size: 16,
          intermediate_size: 24,
          num_hidden_layers: 2,
          num_attention_heads: 4,
          num_key_value_heads: 2,
          head_dim: 4,
        },
        5,
      );
      const adapter = attachLora(model, { r: 2, loraAlpha: 4 });
      expect(adapter.moduleSpecs().slice(0, 7)).toEqual([
        { name: 'model.layers.0.self_attn.q_proj', inFeatures: 16, outFeatures: 16, fanInFanOut: false },
        { name: 'model.layers.0.self_attn.k_proj', inFeatures: 16, outFeatures: 8, fanInFanOut: false },
        { name: 'model.layers.0.self_attn.v_proj', inFeatures: 16, outFeatures: 8, fanInFanOut: false },
        { name: 'model.layers.0.self_attn.o_proj', inFeatures: 16, outFeatures: 16, fanInFanOut: false },
        { name: 'model.layers.0.mlp.gate_proj', inFeatures: 16, outFeatures: 24, fanInFanOut: false },
        { name: 'model.layers.0.mlp.up_proj', inFeatures: 16, outFeatures: 24, fanInFanOut: false },
        { name: 'model.layers.0.mlp.down_proj', inFeatures: 24, outFeatures: 16, fanInFanOut: false },
      ]);
      const before = loraBaseModel(model);
      const base = logitsOf(before);
      expect(maxAbsDiff(logitsOf(model), base)).toBeLessThan(1e-5);
      randomizeB(adapter, 21);
      const adapted = logitsOf(model);
      expect(maxAbsDiff(adapted, base)).toBeGreaterThan(1e-3); // every module's delta reaches the logits

      const out = join(dir, modelType);
      await saveLoraAdapter(adapter, out);
      const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
      expect(config.target_modules).toEqual([
        'q_proj',
        'k_proj',
        'v_proj',
        'o_proj',
        'gate_proj',
        'up_proj',
        'down_proj',
      ]);
      expect(config.fan_in_fan_out).toBe(false);
      const { tensors } = await readSafetensors(join(out, 'adapter_model.safetensors'));
      expect(tensors.get('base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight')?.shape).toEqual([
        2, 16,
      ]);
      expect(tensors.get('base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight')?.shape).toEqual([
        8, 2,
      ]);
      expect(tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight')?.shape).toEqual([
        2, 24,
      ]);

      mergeAndUnload(model);
      expect(maxAbsDiff(logitsOf(model), adapted)).toBeLessThan(1e-4);
      model.dispose();
    },
  );
});
