/**
 * Test-only helpers for the model tests (not exported from the package): a plain-JS GPT-2 forward in
 * float64 loops, and random non-trivial weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll } from 'vitest';
import { useBackend } from '@relign/tensor/testing';
import { innerDim, type GPT2Config } from './config.js';
import { CausalLM } from './causal-lm.js';
import { createRng, fillNormal } from './init.js';

/** The small GPT-2 that the model tests share (odd vocabulary, 2 layers, 2 heads of 4). */
export const SMALL = { vocab_size: 13, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2 };

/**
 * Registers the suite's hooks for a shared model: before its tests, activates `backend` and hands `use` a
 * `CausalLM.create(config, seeds.init)` with {@link randomizeWeights}(seeds.weights); after them, disposes it.
 */
export function withRandomModel(
  backend: Parameters<typeof useBackend>[0],
  use: (model: CausalLM) => void,
  config: Parameters<typeof CausalLM.create>[0] = SMALL,
  seeds = { init: 7, weights: 123 },
): void {
  let model: CausalLM | undefined;
  beforeAll(async () => {
    await useBackend(backend);
    model = CausalLM.create(config, seeds.init);
    randomizeWeights(model, seeds.weights);
    use(model);
  });
  afterAll(() => model?.dispose());
}

/**
 * Overwrites every parameter with seeded values far from GPT-2's init (so attention is not uniform and
 * LayerNorm gains matter): weights and biases N(0, std^2), LayerNorm gains 1 + N(0, std^2).
 */
export function randomizeWeights(model: CausalLM, seed: number, std = 0.3): void {
  const rng = createRng(seed);
  for (const [name, v] of model.variables()) {
    const data = fillNormal(rng, new Float32Array(v.size), std);
    if (/ln_\d\.weight$|ln_f\.weight$/.test(name))
      for (let i = 0; i < data.length; i++) data[i] = 1 + data[i]!;
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
}

/** Host copies of every parameter by HF name. */
export function weightsOf(model: CausalLM): Map<string, Float32Array> {
  return new Map([...model.variables()].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

function get(w: Map<string, Float32Array>, name: string): Float32Array {
  const t = w.get(name);
  if (t === undefined) throw new Error(`reference: no weight ${name}`);
  return t;
}

function layerNormRef(x: number[], g: Float32Array, b: Float32Array, eps: number): number[] {
  const n = x.length;
  const mean = x.reduce((a, c) => a + c, 0) / n;
  const variance = x.reduce((a, c) => a + (c - mean) ** 2, 0) / n;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * g[i]! + b[i]!);
}

/** x [in] times W stored [in, out] row-major, plus b. */
function affine(x: number[], W: Float32Array, b: Float32Array, out: number): number[] {
  const y = Array.from(b.subarray(0, out));
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    for (let j = 0; j < out; j++) y[j]! += xi * W[i * out + j]!;
  }
  return y;
}

/** GPT-2's tanh-form GELU, written with Math.tanh (an independent check of the sigmoid rewrite). */
export function geluRef(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/**
 * Plain-JS forward of ONE unpadded sequence (positions 0..T-1), in float64.
 * @returns { logits: [T][V], hidden: [T][D] }.
 */
export function referenceForward(
  config: GPT2Config,
  w: Map<string, Float32Array>,
  ids: readonly number[],
): { logits: number[][]; hidden: number[][] } {
  const D = config.n_embd;
  const H = config.n_head;
  const Dh = D / H;
  const F = innerDim(config);
  const eps = config.layer_norm_epsilon;
  const scale = config.scale_attn_weights ? 1 / Math.sqrt(Dh) : 1;
  const wte = get(w, 'wte.weight');
  const wpe = get(w, 'wpe.weight');
  let x = ids.map((id, t) => Array.from({ length: D }, (_, d) => wte[id * D + d]! + wpe[t * D + d]!));
  const T = ids.length;
  for (let l = 0; l < config.n_layer; l++) {
    const p = `h.${l}.`;
    const qkv = x.map((row) =>
      affine(
        layerNormRef(row, get(w, `${p}ln_1.weight`), get(w, `${p}ln_1.bias`), eps),
        get(w, `${p}attn.c_attn.weight`),
        get(w, `${p}attn.c_attn.bias`),
        3 * D,
      ),
    );
    const attnOut = x.map(() => new Array<number>(D).fill(0));
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let d = 0; d < Dh; d++) s += qkv[i]![h * Dh + d]! * qkv[j]![D + h * Dh + d]!;
          scores.push(s * scale);
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j <= i; j++) {
          for (let d = 0; d < Dh; d++) attnOut[i]![h * Dh + d]! += (e[j]! / z) * qkv[j]![2 * D + h * Dh + d]!;
        }
      }
    }
    x = x.map((row, i) => {
      const a = affine(attnOut[i]!, get(w, `${p}attn.c_proj.weight`), get(w, `${p}attn.c_proj.bias`), D);
      const r = row.map((v, d) => v + a[d]!);
      const h2 = layerNormRef(r, get(w, `${p}ln_2.weight`), get(w, `${p}ln_2.bias`), eps);
      const f = affine(h2, get(w, `${p}mlp.c_fc.weight`), get(w, `${p}mlp.c_fc.bias`), F).map(geluRef);
      const o = affine(f, get(w, `${p}mlp.c_proj.weight`), get(w, `${p}mlp.c_proj.bias`), D);
      return r.map((v, d) => v + o[d]!);
    });
  }
  const hidden = x.map((row) => layerNormRef(row, get(w, 'ln_f.weight'), get(w, 'ln_f.bias'), eps));
  const logits = hidden.map((hrow) =>
    Array.from({ length: config.vocab_size }, (_, v) => {
      let s = 0;
      for (let d = 0; d < D; d++) s += hrow[d]! * wte[v * D + d]!;
      return s;
    }),
  );
  return { logits, hidden };
}

/** Max |a - b| over two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
