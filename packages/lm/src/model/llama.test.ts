import * as tf from '@tensorflow/tfjs-core';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { CausalLM } from './causal-lm.js';
import { ScalarHead } from './heads.js';
import type { KVCache } from './kv-cache.js';
import { parameterCount } from './size.js';
import { referenceLlama, relativeError, writeFixture, type FixtureConfig } from './llama-test-helpers.js';

const BASE = {
  vocab_size: 23,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  rope_scaling: null,
};

/** One checkpoint per feature the issue names; each differs from the plain Llama in that feature. */
const CASES: { name: string; config: FixtureConfig; dtype?: 'F32' | 'F16' | 'BF16'; shard?: number }[] = [
  {
    name: 'llama, GQA (4 heads, 2 kv heads), tied head',
    config: {
      ...BASE,
      model_type: 'llama',
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 4,
      tie_word_embeddings: true,
    },
  },
  {
    name: 'llama 3: rope_scaling llama3, untied head, sharded, MQA',
    config: {
      ...BASE,
      model_type: 'llama',
      num_attention_heads: 4,
      num_key_value_heads: 1,
      head_dim: 4,
      rope_theta: 100,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 32,
      },
      tie_word_embeddings: false,
    },
    shard: 2000,
  },
  {
    name: 'qwen2: q/k/v biases, BF16 weights, untied',
    config: {
      ...BASE,
      model_type: 'qwen2',
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 4,
      tie_word_embeddings: false,
    },
    dtype: 'BF16',
  },
  {
    name: 'qwen3: q/k norms, head_dim 8 != hidden/heads, F16, tied',
    config: {
      ...BASE,
      model_type: 'qwen3',
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 8,
      tie_word_embeddings: true,
    },
    dtype: 'F16',
  },
  {
    name: 'llama with attention_bias (q/k/v/o biases), MHA',
    config: {
      ...BASE,
      model_type: 'llama',
      num_attention_heads: 2,
      num_key_value_heads: 2,
      head_dim: 8,
      attention_bias: true,
      tie_word_embeddings: false,
    },
  },
];

const SEQS = [
  [1, 5, 9, 2, 22, 7, 3, 11, 0, 4],
  [8, 8, 13, 21, 1, 6, 19, 2, 17, 5],
];

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'relign-llama-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.each(TEST_BACKENDS)('Llama-family CausalLM on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each(CASES)('$name: fromPretrained matches the float64 reference (rel. error < 1e-3)', async (c) => {
    const dir = join(root, `${backend}-${c.name.slice(0, 12).replace(/\W/g, '_')}-${c.dtype ?? 'F32'}`);
    const w = await writeFixture(dir, c.config, { dtype: c.dtype, maxShardBytes: c.shard });
    if (c.shard !== undefined) expect(await readdir(dir)).toContain('model.safetensors.index.json');
    const m = await CausalLM.fromPretrained(dir);
    expect(m.variables().has('lm_head.weight')).toBe(!c.config.tie_word_embeddings);
    const { logits, hidden } = m.forward(SEQS);
    const lg = (await logits.array()) as number[][][];
    const hd = (await hidden.array()) as number[][][];
    for (let b = 0; b < SEQS.length; b++) {
      const ref = referenceLlama(c.config, w, SEQS[b]!);
      expect(relativeError(lg[b]!.flat(), ref.logits.flat())).toBeLessThan(1e-3);
      expect(relativeError(hd[b]!.flat(), ref.hidden.flat())).toBeLessThan(1e-3);
    }
    // Meaningful: dropping the feature under test changes the reference by far more than the tolerance.
    const plain: FixtureConfig = {
      ...c.config,
      model_type: 'llama',
      rope_scaling: null,
      attention_bias: false,
    };
    const wPlain = new Map(
      [...w].filter(([n]) => !/(_proj\.bias|_norm\.weight)$/.test(n) || /layernorm/.test(n)),
    );
    const other = referenceLlama(plain, wPlain, SEQS[0]!).logits.flat();
    if (c.config.model_type !== 'llama' || c.config.rope_scaling !== null || c.config.attention_bias) {
      expect(relativeError(other, referenceLlama(c.config, w, SEQS[0]!).logits.flat())).toBeGreaterThan(1e-2);
    }
    tf.dispose([logits, hidden]);
    m.dispose();
  });

  it.each(CASES.slice(0, 4))(
    '$name: KV-cached decoding (left-padded batch) equals the full forward',
    async (c) => {
      const m = CausalLM.create(c.config, 3);
      // Non-trivial weights: the fixture's, loaded through fromWeights.
      const dir = join(root, `${backend}-cache-${c.config.model_type}-${c.config.num_key_value_heads}`);
      await writeFixture(dir, c.config, { seed: 9 });
      m.dispose();
      const model = await CausalLM.fromPretrained(dir);
      const PAD = 0;
      const prompts = [[3, 1, 4, 1], [9, 2], [5]];
      const Tp = 4;
      const ids = prompts.map((p) => [...new Array<number>(Tp - p.length).fill(PAD), ...p]);
      const mask = prompts.map((p) => [...new Array<number>(Tp - p.length).fill(0), ...p.map(() => 1)]);
      const first = model.forward(ids, { attentionMask: mask, useCache: true });
      let cache: KVCache = first.cache!;
      expect(cache.keys[0]!.shape).toEqual([3, c.config.num_key_value_heads, Tp, c.config.head_dim]);
      tf.dispose([first.logits, first.hidden]);
      const fullIds = ids.map((r) => [...r]);
      const fullMask = mask.map((r) => [...r]);
      for (const step of [
        [7, 8, 9],
        [1, 12, 2],
        [20, 0, 11],
        [6, 5, 4],
      ]) {
        step.forEach((tok, b) => {
          fullIds[b]!.push(tok);
          fullMask[b]!.push(1);
        });
        const next = model.forward(
          step.map((t) => [t]),
          { cache },
        );
        const ref = model.forward(fullIds, { attentionMask: fullMask });
        const T = fullIds[0]!.length;
        const refLast = tf.tidy(() => tf.slice(ref.logits, [0, T - 1, 0], [3, 1, c.config.vocab_size]));
        expect(relativeError(await next.logits.data(), await refLast.data())).toBeLessThan(1e-5);
        cache.dispose();
        cache = next.cache!;
        tf.dispose([next.logits, next.hidden, ref.logits, ref.hidden, refLast]);
      }
      // And the padded rows equal their unpadded float64 reference (positions start at each row's first token).
      const w = new Map([...model.variables()].map(([n, v]) => [n, v.dataSync() as Float32Array]));
      const full = model.forward(fullIds, { attentionMask: fullMask });
      const lg = (await full.logits.array()) as number[][][];
      for (let b = 0; b < 3; b++) {
        const pad = Tp - prompts[b]!.length;
        const ref = referenceLlama(c.config, w, fullIds[b]!.slice(pad));
        expect(relativeError(lg[b]!.slice(pad).flat(), ref.logits.flat())).toBeLessThan(1e-3);
      }
      tf.dispose([full.logits, full.hidden]);
      cache.dispose();
      model.dispose();
    },
  );

  it('positionIds rotate like the reference at large positions (llama3 scaling)', async () => {
    const c = CASES[1]!.config;
    const dir = join(root, `${backend}-pos`);
    const w = await writeFixture(dir, c, { seed: 4 });
    const m = await CausalLM.fromPretrained(dir);
    const pos = SEQS[0]!.map((_, t) => 90 + 3 * t);
    const { logits, hidden } = m.forward([SEQS[0]!], { positionIds: [pos] });
    const ref = referenceLlama(c, w, SEQS[0]!, pos);
    expect(relativeError(await logits.data(), ref.logits.flat())).toBeLessThan(1e-3);
    tf.dispose([logits, hidden]);
    m.dispose();
  });

  it('does not leak across forwards and cached decoding', async () => {
    const m = CausalLM.create(CASES[3]!.config, 1);
    await assertNoLeaks(() => {
      const a = m.forward([[1, 2, 3]], { useCache: true });
      const b = m.forward([[4]], { cache: a.cache });
      tf.dispose([a.logits, a.hidden, b.logits, b.hidden]);
      a.cache!.dispose();
      b.cache!.dispose();
    });
    m.dispose();
  });
});

describe('Llama-family CausalLM (backend-independent)', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it.each(CASES)('$name: parameterCount matches the built model', (c) => {
    const m = CausalLM.create(c.config, 0);
    expect(parameterCount(m.config)).toBe(m.numParameters());
    m.dispose();
  });

  it('save/load round trip keeps logits, config fields and the loaded layout (sharded BF16 stays so)', async () => {
    const c: FixtureConfig = { ...CASES[2]!.config, custom_field: 'kept' };
    const src = join(root, 'rt-src');
    await writeFixture(src, c, { dtype: 'BF16', maxShardBytes: 1500 });
    const m = await CausalLM.fromPretrained(src);
    const a = m.forward(SEQS);
    expect(m.weightsLayout).toEqual({ dtype: 'BF16', maxShardBytes: expect.any(Number) });
    // By default a save is lossless float32 in one file (trainer checkpoints rely on it) ...
    const f32 = join(root, 'rt-f32');
    await m.save(f32);
    expect((await readdir(f32)).sort()).toEqual(['config.json', 'model.safetensors']);
    // ... and with the loaded layout, BF16 shards again.
    const out = join(root, 'rt-out');
    await m.save(out, m.weightsLayout);
    const files = await readdir(out);
    expect(files).toContain('model.safetensors.index.json');
    const cfg = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      model_type: 'qwen2',
      architectures: ['Qwen2ForCausalLM'],
      custom_field: 'kept',
    });
    const back = await CausalLM.fromPretrained(out);
    expect(back.weightsLayout?.dtype).toBe('BF16');
    const b = back.forward(SEQS);
    // BF16 values survive a BF16 round trip exactly.
    expect(Array.from(await b.logits.data())).toEqual(Array.from(await a.logits.data()));
    // A new model saves as one F32 file.
    const fresh = CausalLM.create(CASES[0]!.config, 5);
    await fresh.save(join(root, 'rt-fresh'));
    expect((await readdir(join(root, 'rt-fresh'))).sort()).toEqual(['config.json', 'model.safetensors']);
    const again = await CausalLM.fromPretrained(join(root, 'rt-fresh'));
    const x = fresh.forward(SEQS);
    const y = again.forward(SEQS);
    expect(Array.from(await y.logits.data())).toEqual(Array.from(await x.logits.data()));
    tf.dispose([a.logits, a.hidden, b.logits, b.hidden, x.logits, x.hidden, y.logits, y.hidden]);
    for (const model of [m, back, fresh, again]) model.dispose();
  });

  it('ignores the rotary_emb.inv_freq buffer and a tied lm_head copy; names missing and unexpected tensors', async () => {
    const c = CASES[0]!.config;
    const m = CausalLM.create(c, 2);
    const t = await m.tensors();
    const emb = t.get('model.embed_tokens.weight')!;
    const withBuffers = new Map([
      ...t,
      [
        'model.layers.0.self_attn.rotary_emb.inv_freq',
        { dtype: 'float32' as const, shape: [2], data: new Float32Array(2) },
      ],
      ['lm_head.weight', emb],
    ]);
    CausalLM.fromWeights(c, withBuffers).dispose();
    const broken = new Map(t);
    broken.delete('model.layers.1.mlp.up_proj.weight');
    broken.set('score.weight', { dtype: 'float32', shape: [1, 16], data: new Float32Array(16) });
    expect(() => CausalLM.fromWeights(c, broken, { source: 'x.safetensors' })).toThrow(
      /x\.safetensors does not match the llama config .*\n.*missing tensors: model\.layers\.1\.mlp\.up_proj\.weight\n.*unexpected tensors: score\.weight/,
    );
    m.dispose();
  });

  it('fromPretrained(hubId) loads the snapshot from the Hugging Face cache (offline)', async () => {
    const cacheDir = join(root, 'hf-cache');
    const commit = 'a'.repeat(40);
    const repo = join(cacheDir, 'models--org--tiny-qwen3');
    const c = CASES[3]!.config;
    const w = await writeFixture(join(repo, 'snapshots', commit), c, { seed: 6 });
    await mkdir(join(repo, 'refs'), { recursive: true });
    await writeFile(join(repo, 'refs', 'main'), commit);
    const m = await CausalLM.fromPretrained('org/tiny-qwen3', { hub: { offline: true, cacheDir } });
    const { logits, hidden } = m.forward([SEQS[1]!]);
    expect(relativeError(await logits.data(), referenceLlama(c, w, SEQS[1]!).logits.flat())).toBeLessThan(
      1e-3,
    );
    tf.dispose([logits, hidden]);
    m.dispose();
    await expect(CausalLM.fromPretrained('org/absent', { hub: { offline: true, cacheDir } })).rejects.toThrow(
      /org\/absent.*offline mode is on/,
    );
  });

  it('a ScalarHead reads Llama hidden states (value / reward head)', async () => {
    const m = CausalLM.create(CASES[0]!.config, 1);
    const head = ScalarHead.create(m.dims.hiddenSize, { seed: 2 });
    const { logits, hidden } = m.forward(SEQS);
    const v = head.apply(hidden);
    expect(v.shape).toEqual([2, SEQS[0]!.length]);
    const h = (await hidden.array()) as number[][][];
    const wv = await head.weight.data();
    const want = h[1]![3]!.reduce((a, x, d) => a + x * wv[d]!, 0);
    expect((await v.array())[1]![3]!).toBeCloseTo(want, 5);
    tf.dispose([logits, hidden, v]);
    head.dispose();
    m.dispose();
  });

  it('create() refuses a config too large to fit, naming the field', () => {
    expect(() => CausalLM.create({ ...CASES[0]!.config, num_hidden_layers: 1e9 })).toThrow(
      /"num_hidden_layers": 1000000000/,
    );
  });
});
