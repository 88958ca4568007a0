/**
 * Test-only helpers (not exported from the package): a small model with peaked next-token distributions,
 * and an independent per-row reference of the logits/hidden states that predict each response token.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, type GPT2ConfigInput } from '@relign/lm';
import type { RolloutBatch } from './batch.js';

/**
 * A 2-layer model small enough for fast tests. initializer_range 0.3 (GPT-2 uses 0.02) makes the logits
 * spread over a few units, so top-k/top-p cut real mass and stop tokens are hit at varied steps.
 */
export const TEST_CONFIG: GPT2ConfigInput = {
  vocab_size: 48,
  n_positions: 40,
  n_embd: 16,
  n_layer: 2,
  n_head: 2,
  initializer_range: 0.3,
};

export function testModel(seed = 3): CausalLM {
  return CausalLM.create(TEST_CONFIG, seed);
}

/**
 * For row b of a batch: the model run on the UNPADDED sequence `prompt + response[:len−1]` (no mask, no
 * cache), returning, for each valid response position t, the logits row `[V]` and hidden row `[D]` at
 * position `Lp − 1 + t` (docs/algorithms.md §0 alignment). An independent reference for generate/computeLogprobs.
 */
export function rowReference(
  model: CausalLM,
  batch: RolloutBatch,
  b: number,
): { logits: Float32Array[]; hidden: Float32Array[] } {
  const { promptWidth: Tp, responseWidth: Tr } = batch;
  const Lp = batch.promptLengths[b]!;
  const Lr = batch.responseLengths[b]!;
  const seq = [
    ...batch.promptTokens.subarray(b * Tp + Tp - Lp, (b + 1) * Tp),
    ...batch.responseTokens.subarray(b * Tr, b * Tr + Lr - 1),
  ];
  const { logits, hidden } = model.forward([seq]);
  const V = logits.shape[2];
  const D = hidden.shape[2];
  const l = logits.dataSync() as Float32Array;
  const h = hidden.dataSync() as Float32Array;
  tf.dispose([logits, hidden]);
  const out = { logits: [] as Float32Array[], hidden: [] as Float32Array[] };
  for (let t = 0; t < Lr; t++) {
    const p = Lp - 1 + t;
    out.logits.push(l.slice(p * V, (p + 1) * V));
    out.hidden.push(h.slice(p * D, (p + 1) * D));
  }
  return out;
}

/** `log softmax(z / τ)[y]` in float64. */
export function logSoftmaxAt(z: Float32Array, y: number, tau: number): number {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v / tau);
  let s = 0;
  for (const v of z) s += Math.exp(v / tau - max);
  return z[y]! / tau - max - Math.log(s);
}
