/**
 * Test-only helpers for the Llama-family tests (not exported from the package), written independently of
 * the model code: random checkpoints in the Hugging Face layout (config.json + safetensors, optionally
 * sharded and F16/BF16), and a plain-JS float64 forward of one sequence following HF's
 * `modeling_llama.py` / `modeling_qwen2.py` / `modeling_qwen3.py`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng, readSafetensorsDir, writeSafetensorsDir } from '@relign/tensor';

/** A complete config.json for the fixtures (every field the reference reads is present). */
export interface FixtureConfig {
  model_type: 'llama' | 'qwen2' | 'qwen3';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: null | {
    rope_type: 'llama3';
    factor: number;
    low_freq_factor: number;
    high_freq_factor: number;
    original_max_position_embeddings: number;
  };
  tie_word_embeddings: boolean;
  attention_bias?: boolean;
  [key: string]: unknown;
}

/** The HF tensor names and shapes of a fixture config (listed here, not taken from the model code). */
export function fixtureShapes(c: FixtureConfig): Map<string, number[]> {
  const D = c.hidden_size;
  const Q = c.num_attention_heads * c.head_dim;
  const KV = c.num_key_value_heads * c.head_dim;
  const qkvBias = c.model_type === 'qwen2' || c.attention_bias === true;
  const oBias = c.model_type !== 'qwen2' && c.attention_bias === true;
  const out = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocab_size, D]]]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const a = `model.layers.${l}.self_attn.`;
    const m = `model.layers.${l}.mlp.`;
    out.set(`model.layers.${l}.input_layernorm.weight`, [D]);
    out.set(`model.layers.${l}.post_attention_layernorm.weight`, [D]);
    out.set(`${a}q_proj.weight`, [Q, D]);
    out.set(`${a}k_proj.weight`, [KV, D]);
    out.set(`${a}v_proj.weight`, [KV, D]);
    out.set(`${a}o_proj.weight`, [D, Q]);
    if (qkvBias) {
      out.set(`${a}q_proj.bias`, [Q]);
      out.set(`${a}k_proj.bias`, [KV]);
      out.set(`${a}v_proj.bias`, [KV]);
    }
    if (oBias) out.set(`${a}o_proj.bias`, [D]);
    if (c.model_type === 'qwen3') {
      out.set(`${a}q_norm.weight`, [c.head_dim]);
      out.set(`${a}k_norm.weight`, [c.head_dim]);
    }
    out.set(`${m}gate_proj.weight`, [c.intermediate_size, D]);
    out.set(`${m}up_proj.weight`, [c.intermediate_size, D]);
    out.set(`${m}down_proj.weight`, [D, c.intermediate_size]);
  }
  out.set('model.norm.weight', [D]);
  if (!c.tie_word_embeddings) out.set('lm_head.weight', [c.vocab_size, D]);
  return out;
}

/**
 * Writes a random checkpoint folder: norm gains 1 + N(0, 0.2^2), everything else N(0, std^2), so attention
 * is far from uniform. @returns the weights as stored (read back, so F16/BF16 rounding is included).
 */
export async function writeFixture(
  dir: string,
  config: FixtureConfig,
  { seed = 1, std = 0.25, dtype = 'F32', maxShardBytes } = {} as {
    seed?: number;
    std?: number;
    dtype?: 'F32' | 'F16' | 'BF16';
    maxShardBytes?: number;
  },
): Promise<Map<string, Float32Array>> {
  const rng = createRng(seed);
  const tensors = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>();
  for (const [name, shape] of fixtureShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const norm = /norm\.weight$/.test(name);
    for (let i = 0; i < data.length; i++) data[i] = norm ? 1 + rng.normal(0, 0.2) : rng.normal(0, std);
    tensors.set(name, { dtype: 'float32', shape, data });
  }
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeSafetensorsDir(dir, tensors, { dtype, ...(maxShardBytes ? { maxShardBytes } : {}) });
  const back = await readSafetensorsDir(dir);
  return new Map([...back.tensors].map(([n, t]) => [n, t.data as Float32Array]));
}

function get(w: Map<string, Float32Array>, name: string): Float32Array {
  const t = w.get(name);
  if (t === undefined) throw new Error(`reference: no weight ${name}`);
  return t;
}

/** y = W x (+ b), W stored [out, in] row-major (torch nn.Linear). */
function matvec(W: Float32Array, x: number[], b?: Float32Array): number[] {
  const n = x.length;
  const out = W.length / n;
  const y = new Array<number>(out);
  for (let o = 0; o < out; o++) {
    let s = b === undefined ? 0 : b[o]!;
    for (let i = 0; i < n; i++) s += W[o * n + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function rms(x: number[], g: Float32Array, eps: number): number[] {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  const r = 1 / Math.sqrt(ms + eps);
  return x.map((v, i) => v * r * g[i]!);
}

/** HF `_compute_default_rope_parameters` / `_compute_llama3_parameters`, in float64. */
export function referenceInvFreq(c: FixtureConfig): number[] {
  const half = c.head_dim / 2;
  const inv: number[] = [];
  for (let i = 0; i < half; i++) inv.push(Math.pow(c.rope_theta, -(2 * i) / c.head_dim));
  const s = c.rope_scaling;
  if (s === null) return inv;
  const lowW = s.original_max_position_embeddings / s.low_freq_factor;
  const highW = s.original_max_position_embeddings / s.high_freq_factor;
  return inv.map((f) => {
    const wl = (2 * Math.PI) / f;
    const scaled = wl > lowW ? f / s.factor : f;
    const medium = !(wl < highW) && !(wl > lowW);
    if (!medium) return scaled;
    const sm =
      (s.original_max_position_embeddings / wl - s.low_freq_factor) /
      (s.high_freq_factor - s.low_freq_factor);
    return ((1 - sm) * scaled) / s.factor + sm * scaled;
  });
}

/** Rotates one head's vector by its position (HF rotate_half: pairs (i, i + Dh/2)). */
function rotate(v: number[], pos: number, inv: number[]): number[] {
  const half = v.length / 2;
  const out = v.slice();
  for (let i = 0; i < half; i++) {
    const a = pos * inv[i]!;
    const c = Math.cos(a);
    const s = Math.sin(a);
    out[i] = v[i]! * c - v[i + half]! * s;
    out[i + half] = v[i + half]! * c + v[i]! * s;
  }
  return out;
}

const silu = (x: number) => x / (1 + Math.exp(-x));

/**
 * Float64 forward of ONE unpadded sequence at `positions` (default 0..T-1).
 * @returns { logits: [T][V], hidden: [T][D] }.
 */
export function referenceLlama(
  c: FixtureConfig,
  w: Map<string, Float32Array>,
  ids: readonly number[],
  positions: readonly number[] = ids.map((_, t) => t),
): { logits: number[][]; hidden: number[][] } {
  const D = c.hidden_size;
  const H = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  const Dh = c.head_dim;
  const eps = c.rms_norm_eps;
  const inv = referenceInvFreq(c);
  const emb = get(w, 'model.embed_tokens.weight');
  const T = ids.length;
  let x = ids.map((id) => Array.from(emb.subarray(id * D, (id + 1) * D)));
  const opt = (n: string) => w.get(n);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const a = `${p}self_attn.`;
    const qs: number[][][] = [];
    const ks: number[][][] = [];
    const vs: number[][][] = [];
    for (let t = 0; t < T; t++) {
      const h = rms(x[t]!, get(w, `${p}input_layernorm.weight`), eps);
      const q = matvec(get(w, `${a}q_proj.weight`), h, opt(`${a}q_proj.bias`));
      const k = matvec(get(w, `${a}k_proj.weight`), h, opt(`${a}k_proj.bias`));
      const v = matvec(get(w, `${a}v_proj.weight`), h, opt(`${a}v_proj.bias`));
      const heads = (y: number[], n: number) =>
        Array.from({ length: n }, (_, i) => y.slice(i * Dh, (i + 1) * Dh));
      let qh = heads(q, H);
      let kh = heads(k, Hkv);
      if (c.model_type === 'qwen3') {
        qh = qh.map((u) => rms(u, get(w, `${a}q_norm.weight`), eps));
        kh = kh.map((u) => rms(u, get(w, `${a}k_norm.weight`), eps));
      }
      qs.push(qh.map((u) => rotate(u, positions[t]!, inv)));
      ks.push(kh.map((u) => rotate(u, positions[t]!, inv)));
      vs.push(heads(v, Hkv));
    }
    const G = H / Hkv;
    x = x.map((row, i) => {
      const attn: number[] = [];
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / G); // HF repeat_kv: query head h reads kv head h // G
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let d = 0; d < Dh; d++) s += qs[i]![h]![d]! * ks[j]![kv]![d]!;
          scores.push(s / Math.sqrt(Dh));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((u, v) => u + v, 0);
        for (let d = 0; d < Dh; d++) {
          let s = 0;
          for (let j = 0; j <= i; j++) s += (e[j]! / z) * vs[j]![kv]![d]!;
          attn.push(s);
        }
      }
      const o = matvec(get(w, `${a}o_proj.weight`), attn, opt(`${a}o_proj.bias`));
      const r = row.map((v, d) => v + o[d]!);
      const h2 = rms(r, get(w, `${p}post_attention_layernorm.weight`), eps);
      const g = matvec(get(w, `${p}mlp.gate_proj.weight`), h2);
      const u = matvec(get(w, `${p}mlp.up_proj.weight`), h2);
      const dn = matvec(
        get(w, `${p}mlp.down_proj.weight`),
        g.map((gv, k) => silu(gv) * u[k]!),
      );
      return r.map((v, d) => v + dn[d]!);
    });
  }
  const hidden = x.map((row) => rms(row, get(w, 'model.norm.weight'), eps));
  const head = c.tie_word_embeddings ? emb : get(w, 'lm_head.weight');
  return { logits: hidden.map((h) => matvec(head, h)), hidden };
}

/** max |a - b| / max |b|: the relative error of a result against its reference. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relativeError: lengths ${a.length} and ${b.length} differ`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}
