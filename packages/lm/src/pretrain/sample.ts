/**
 * Seeded text sampling from a causal LM with temperature and top-k (host-side selection, KV cache).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@relign/tensor';
import type { CausalLM } from '../model/causal-lm.js';
import type { KVCache } from '../model/kv-cache.js';

export interface SampleOptions {
  /** Tokens to generate at most. */
  maxNewTokens: number;
  /** Softmax temperature τ > 0. Default 0.8. */
  temperature?: number;
  /** Sample among the k most likely tokens (0 or >= V: all). Default 40. */
  topK?: number;
  /** Random stream (`createRng(seed)`); advanced by one draw per token. */
  rng: Rng;
  /** Stop after generating this id (it is included in the output). */
  eosId?: number;
}

/**
 * Draws an index from the top-k of `logits / temperature` with one uniform draw. Ties in the logits are
 * broken by lower id, so the result is a function of the logits and the draw only.
 */
export function sampleTopK(logits: ArrayLike<number>, temperature: number, topK: number, u: number): number {
  const V = logits.length;
  const k = topK > 0 ? Math.min(topK, V) : V;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  const top = order.slice(0, k);
  const max = logits[top[0]!]!;
  const weights = top.map((i) => Math.exp((logits[i]! - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  const target = u * total;
  for (let j = 0; j < k; j++) {
    acc += weights[j]!;
    if (target < acc) return top[j]!;
  }
  return top[k - 1]!;
}

/**
 * Continues `promptIds` (at least one id: use `[eosId]` to sample from scratch) one token at a time:
 * the logits of the last position, divided by the temperature, restricted to the top k, are sampled
 * with `rng`. Stops at `maxNewTokens`, at `eosId`, or when the context reaches `n_positions`.
 *
 * @returns the generated ids (without the prompt). No tensors remain. One asynchronous read per token (the
 *   last position's logits, which the host-side top-k needs).
 */
export async function sampleTokens(
  model: CausalLM,
  promptIds: readonly number[],
  options: SampleOptions,
): Promise<number[]> {
  const { maxNewTokens, temperature = 0.8, topK = 40, rng, eosId } = options;
  if (promptIds.length === 0)
    throw new Error('sampleTokens: promptIds is empty; start from [eosId] to sample unconditionally.');
  if (!(temperature > 0)) throw new Error(`sampleTokens: temperature must be > 0 (got ${temperature}).`);
  const limit = model.dims.maxPositions;
  const prompt = promptIds.length > limit ? promptIds.slice(promptIds.length - limit) : promptIds.slice();
  const out: number[] = [];
  let cache: KVCache | undefined;
  let input: number[] = prompt;
  try {
    while (out.length < maxNewTokens && prompt.length + out.length < limit) {
      // Reserve every position this loop can reach: decode steps then write the cache in place (wasm).
      const cacheCapacity = Math.min(prompt.length + maxNewTokens, limit);
      const res = model.forward([input], cache ? { cache } : { useCache: true, cacheCapacity });
      const T = input.length;
      const lastRow = tf.slice(res.logits, [0, T - 1, 0], [1, 1, -1]);
      res.logits.dispose();
      res.hidden.dispose();
      cache?.dispose();
      cache = res.cache;
      let last: ArrayLike<number>;
      try {
        last = await lastRow.data();
      } finally {
        lastRow.dispose();
      }
      const next = sampleTopK(last, temperature, topK, rng.uniform());
      out.push(next);
      if (next === eosId) break;
      input = [next];
    }
  } finally {
    cache?.dispose();
  }
  return out;
}
