import * as tf from '@tensorflow/tfjs-core';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { CausalLM } from './causal-lm.js';
import { readSafetensors, writeSafetensors } from './io.js';
import { randomizeWeights } from './test-helpers.js';

const SMALL = { vocab_size: 13, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2 };
const IDS = [
  [1, 2, 3, 4],
  [5, 6, 7, 8],
];

type Tensors = Map<string, { dtype: 'float32' | 'int32'; shape: number[]; data: Float32Array | Int32Array }>;

describe.each(TEST_BACKENDS)('checkpoints on %s', (backend) => {
  let dir: string;
  let model: CausalLM;
  let want: Float32Array;

  beforeAll(async () => {
    await useBackend(backend);
    dir = await mkdtemp(join(tmpdir(), 'relign-gpt2-'));
    model = CausalLM.create(SMALL, 1);
    randomizeWeights(model, 2);
    const r = model.forward(IDS);
    want = r.logits.dataSync() as Float32Array;
    tf.dispose([r.logits, r.hidden]);
    await model.save(join(dir, 'saved'));
  });
  afterAll(async () => {
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  async function logitsOf(path: string, opts = {}): Promise<Float32Array> {
    const m = await CausalLM.fromPretrained(path, opts);
    const r = m.forward(IDS);
    const out = r.logits.dataSync() as Float32Array;
    tf.dispose([r.logits, r.hidden]);
    m.dispose();
    return out;
  }

  /** Writes a checkpoint dir with the saved config and the given tensors. */
  async function variant(name: string, tensors: Tensors): Promise<string> {
    const d = join(dir, name);
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'config.json'), await readFile(join(dir, 'saved', 'config.json')));
    await writeSafetensors(join(d, 'model.safetensors'), tensors);
    return d;
  }

  async function savedTensors(): Promise<Tensors> {
    return (await readSafetensors(join(dir, 'saved', 'model.safetensors'))).tensors as Tensors;
  }

  it('save writes the HF layout (no prefix, no lm_head) and an HF config.json', async () => {
    const t = await savedTensors();
    expect([...t.keys()].sort()).toEqual([...model.variables().keys()].sort());
    expect(t.get('h.1.attn.c_attn.weight')!.shape).toEqual([8, 24]); // Conv1D [in, out]
    expect(t.get('h.0.mlp.c_proj.weight')!.shape).toEqual([32, 8]);
    const cfg = JSON.parse(await readFile(join(dir, 'saved', 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      n_layer: 2,
      n_ctx: 16,
    });
    const meta = (await readSafetensors(join(dir, 'saved', 'model.safetensors'))).metadata;
    expect(meta).toEqual({ format: 'pt' });
  });

  it('save -> fromPretrained gives identical logits', async () => {
    expect(Array.from(await logitsOf(join(dir, 'saved')))).toEqual(Array.from(want));
  });

  it('loads the transformer.-prefixed layout with attn.bias / masked_bias buffers and a tied lm_head', async () => {
    const t = await savedTensors();
    const out: Tensors = new Map();
    for (const [n, v] of t) out.set(`transformer.${n}`, v);
    for (const i of [0, 1]) {
      out.set(`transformer.h.${i}.attn.bias`, {
        dtype: 'float32',
        shape: [1, 1, 16, 16],
        data: new Float32Array(256),
      });
      out.set(`transformer.h.${i}.attn.masked_bias`, {
        dtype: 'float32',
        shape: [],
        data: new Float32Array([-1e4]),
      });
    }
    out.set('lm_head.weight', t.get('wte.weight')!);
    const d = await variant('prefixed', out);
    expect(Array.from(await logitsOf(d))).toEqual(Array.from(want));
  });

  it('names a missing tensor', async () => {
    const t = await savedTensors();
    t.delete('h.1.mlp.c_fc.bias');
    const d = await variant('missing', t);
    await expect(CausalLM.fromPretrained(d)).rejects.toThrow(/missing tensors: h\.1\.mlp\.c_fc\.bias/);
  });

  it('names a wrong-shape tensor with both shapes', async () => {
    const t = await savedTensors();
    t.set('transformer.h.0.attn.c_proj.weight', {
      dtype: 'float32',
      shape: [4, 16],
      data: new Float32Array(64),
    });
    t.delete('h.0.attn.c_proj.weight');
    const d = await variant('shape', t);
    await expect(CausalLM.fromPretrained(d)).rejects.toThrow(
      /transformer\.h\.0\.attn\.c_proj\.weight has shape \[4,16\], expected \[8,8\]/,
    );
  });

  it('rejects unexpected tensors unless strict is false', async () => {
    const t = await savedTensors();
    t.set('score.weight', { dtype: 'float32', shape: [1, 8], data: new Float32Array(8) });
    const d = await variant('extra', t);
    await expect(CausalLM.fromPretrained(d)).rejects.toThrow(/unexpected tensors: score\.weight/);
    expect(Array.from(await logitsOf(d, { strict: false }))).toEqual(Array.from(want));
  });

  it('rejects an lm_head.weight of the wrong shape and an int tensor', async () => {
    const t = await savedTensors();
    t.set('lm_head.weight', { dtype: 'float32', shape: [12, 8], data: new Float32Array(96) });
    t.set('ln_f.bias', { dtype: 'int32', shape: [8], data: new Int32Array(8) });
    const d = await variant('badhead', t);
    const err = await CausalLM.fromPretrained(d).catch((e: Error) => e);
    expect(String(err)).toMatch(/lm_head\.weight has shape \[12,8\]/);
    expect(String(err)).toMatch(/ln_f\.bias has dtype int32/);
  });

  it('names the missing file and a config error', async () => {
    await expect(CausalLM.fromPretrained(join(dir, 'nope'))).rejects.toThrow(
      /cannot read .*nope\/config\.json/,
    );
    const d = join(dir, 'badcfg');
    await model.save(d);
    const cfg = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
    await writeFile(join(d, 'config.json'), JSON.stringify({ ...cfg, n_head: 3 }));
    await expect(CausalLM.fromPretrained(d)).rejects.toThrow(
      /badcfg\/config\.json: n_head \(3\) does not divide/,
    );
  });

  it('rejects a config too large to fit before allocating, naming config.json, the size and the field', async () => {
    const d = join(dir, 'huge');
    await model.save(d);
    const cfg = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
    await writeFile(join(d, 'config.json'), JSON.stringify({ ...cfg, n_layer: 1e9 }));
    const t0 = performance.now();
    const err = await CausalLM.fromPretrained(d).catch((e: Error) => e);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(String(err)).toMatch(
      /huge\/config\.json: the model would have 8\.\d+e\+11 parameters = [\d.]+ GiB of float32 weights, more than this machine's memory .*"n_layer": 1000000000/,
    );
    // The same model is fine under an explicit, larger limit (here: just the check, no allocation).
    await writeFile(join(d, 'config.json'), JSON.stringify(cfg));
    await expect(CausalLM.fromPretrained(d, { maxParameterBytes: 100 })).rejects.toThrow(
      /more than maxParameterBytes \(100 bytes\)/,
    );
  });

  it('rejects NaN/Inf weights at load, naming the tensor', async () => {
    const t = await savedTensors();
    const w = t.get('h.1.mlp.c_proj.weight')!;
    const data = Float32Array.from(w.data as Float32Array);
    data[5] = NaN;
    t.set('h.1.mlp.c_proj.weight', { ...w, data });
    const d = await variant('nan', t);
    await expect(CausalLM.fromPretrained(d)).rejects.toThrow(
      /tensor "h\.1\.mlp\.c_proj\.weight": element 5 is NaN/,
    );
  });

  it('fromPretrained({trainable:false}) loads frozen; unknown config fields survive a save', async () => {
    const d = join(dir, 'extras');
    await model.save(d);
    const cfg = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
    await writeFile(join(d, 'config.json'), JSON.stringify({ ...cfg, custom_field: 'x' }));
    const m = await CausalLM.fromPretrained(d, { trainable: false });
    expect(m.trainableVariables().size).toBe(0);
    await m.save(join(dir, 'extras2'));
    const again = JSON.parse(await readFile(join(dir, 'extras2', 'config.json'), 'utf8'));
    expect(again.custom_field).toBe('x');
    m.dispose();
  });
});
