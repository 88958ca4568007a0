/**
 * Batched sampling with the KV cache and exact per-token log-probs (docs/algorithms.md §4.1, §4.2).
 *
 * One prefill over the left-padded prompts, then one decode step per new token. Each step downloads the
 * last-position logits `[B, V]` once and draws every row's token on the host with the seeded RNG
 * (see {@link TokenDistribution}): sampling is dispatch-bound on tfjs, so the device does only the model's
 * own ops. Rows that have stopped leave the batch: before the next decode step the KV cache is compacted to
 * the rows still running (`KVCache.gather`), so later steps cost only those rows. The host keeps every
 * output in the original row order and draws the RNG per original row (one uniform per running row per
 * step, in row order), so compaction changes no token, log-prob or length (tested bit for bit).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, KVCache } from '@relign/lm';
import { createRng } from '@relign/tensor';
import type { RolloutBatch } from './batch.js';
import { TokenDistribution } from './distribution.js';
import { resolveGenerateOptions, type GenerateOptions } from './options.js';

/** A prompt: its token ids (at least one). */
export type PromptTokens = readonly number[] | Int32Array;

const FN = 'generate';

/**
 * Samples `responsesPerPrompt` responses for each prompt, batched, with the KV cache.
 *
 * Rows are ordered prompt by prompt: rows `g·G .. g·G + G − 1` answer `prompts[g]` (G =
 * `responsesPerPrompt`) and carry group id g. The RNG draws one uniform per still-running row per step,
 * in row order, so the same model, prompts, options and backend give the same batch.
 *
 * @param model the policy (a `CausalLM` of @relign/lm); not modified.
 * @param prompts token arrays of any lengths >= 1; `longest prompt + maxNewTokens` must fit `n_positions`.
 * @param options see {@link GenerateOptions}.
 * @returns a {@link RolloutBatch} of host arrays. No tensors remain allocated.
 * @throws Error naming the prompt or option that is invalid.
 */
export async function generate(
  model: CausalLM,
  prompts: readonly PromptTokens[],
  options: GenerateOptions,
): Promise<RolloutBatch> {
  return generateRows(model, prompts, options, true);
}

/**
 * {@link generate} with batch compaction switchable (`compact` false: finished rows keep decoding pad ids,
 * the behaviour before compaction). Internal: the tests compare both; not exported from the package.
 */
export async function generateRows(
  model: CausalLM,
  prompts: readonly PromptTokens[],
  options: GenerateOptions,
  compact: boolean,
): Promise<RolloutBatch> {
  const V = model.config.vocab_size;
  const opts = resolveGenerateOptions(options, V, FN);
  const { maxNewTokens, responsesPerPrompt: G, padTokenId: pad, policyVersion } = opts;

  if (!Array.isArray(prompts) || prompts.length === 0) {
    throw new Error(`${FN}: prompts must be a non-empty array of token arrays`);
  }
  let Tp = 0;
  prompts.forEach((p, i) => {
    if (!(Array.isArray(p) || p instanceof Int32Array) || p.length === 0) {
      throw new Error(
        `${FN}: prompts[${i}] must be a non-empty array of token ids (start from [bosId] if empty)`,
      );
    }
    for (let t = 0; t < p.length; t++) {
      const id = p[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new Error(
          `${FN}: prompts[${i}][${t}] = ${String(id)} is not a token id in [0, ${V}) (vocab_size)`,
        );
      }
    }
    Tp = Math.max(Tp, p.length);
  });
  const nPos = model.dims.maxPositions;
  if (Tp + maxNewTokens > nPos) {
    throw new Error(
      `${FN}: the longest prompt (${Tp} tokens) + options.maxNewTokens (${maxNewTokens}) exceeds the model's ` +
        `n_positions=${nPos}; shorten the prompts or lower maxNewTokens`,
    );
  }

  // Rows: each prompt repeated G times (adjacent), left-padded to Tp.
  const P = prompts.length;
  const B = P * G;
  const promptTokens = new Int32Array(B * Tp).fill(pad);
  const promptLengths = new Int32Array(B);
  const groupIds = new Int32Array(B);
  let ragged = false;
  for (let g = 0; g < P; g++) {
    const p = prompts[g]!;
    if (p.length !== Tp) ragged = true;
    for (let j = 0; j < G; j++) {
      const b = g * G + j;
      for (let t = 0; t < p.length; t++) promptTokens[b * Tp + Tp - p.length + t] = p[t]!;
      promptLengths[b] = p.length;
      groupIds[b] = g;
    }
  }

  const rng = createRng(opts.seed);
  const dist = new TokenDistribution(V, opts);
  const stops = new Set(opts.stopTokenIds);
  const tokens = new Int32Array(B * maxNewTokens).fill(pad);
  const logprobs = new Float32Array(B * maxNewTokens);
  const lengths = new Int32Array(B);
  const ended = new Uint8Array(B);
  const next = new Int32Array(B).fill(pad);
  let running = B;
  // Row i of the cache (and of each step's logits) is original row live[i]; ascending, so walking the
  // cache rows visits the running rows in original order, the order the RNG is drawn in.
  let live = Array.from({ length: B }, (_, b) => b);

  let cache: KVCache | undefined;
  try {
    // Prefill. Equal-length prompts need no mask: the model's dense path (no position bookkeeping).
    let last: tf.Tensor;
    {
      const ids = tf.tensor2d(promptTokens, [B, Tp], 'int32');
      const mask = ragged ? tf.tensor2d(leftMask(promptLengths, Tp), [B, Tp], 'float32') : undefined;
      try {
        // The cache's last use is the step before the last token (Tp + maxNewTokens - 1 positions): reserving
        // them lets every decode step write its keys/values in place (wasm) instead of copying the cache.
        const cacheCapacity = Tp + maxNewTokens - 1;
        const opts = { useCache: true, cacheCapacity, ...(mask ? { attentionMask: mask } : {}) };
        const out = model.forward(ids, opts);
        cache = out.cache;
        out.hidden.dispose();
        if (Tp === 1) {
          last = out.logits;
        } else {
          last = tf.slice(out.logits, [0, Tp - 1, 0], [B, 1, V]);
          out.logits.dispose();
        }
      } finally {
        ids.dispose();
        mask?.dispose();
      }
    }
    for (let step = 0; ; step++) {
      let data: Float32Array;
      try {
        data = (await last.data()) as Float32Array;
      } finally {
        last.dispose();
      }
      // A short logits buffer reads as undefined past its end, which sampling would report as "every logit
      // of a row is -Infinity": name the real fault (a step's logits lost rows) instead.
      if (data.length !== live.length * V) {
        throw new Error(
          `${FN}: step ${step} returned logits for ${data.length / V} rows but ${live.length} rows are ` +
            `decoding (model.forward lost batch rows; a bug in the model or its kernels)`,
        );
      }
      for (let i = 0; i < live.length; i++) {
        const b = live[i]!;
        if (ended[b]) continue; // stopped at an earlier step (not compacted away): padding from here on
        const { token, logprob } = dist.sample(data, i * V, opts.temperature === 0 ? 0 : rng.uniform());
        tokens[b * maxNewTokens + step] = token;
        logprobs[b * maxNewTokens + step] = logprob;
        lengths[b] = step + 1;
        next[b] = token;
        if (stops.has(token)) {
          ended[b] = 1;
          next[b] = pad;
          running--;
        }
      }
      if (running === 0 || step + 1 === maxNewTokens) break;
      if (compact && running < live.length) {
        // Drop the finished rows from the cache: one gather per layer now instead of their share of every
        // later step (a decode step's cost is proportional to its rows).
        const keep: number[] = [];
        live.forEach((b, i) => {
          if (!ended[b]) keep.push(i);
        });
        const smaller = cache!.gather(keep);
        cache!.dispose();
        cache = smaller;
        live = keep.map((i) => live[i]!);
      }
      // Decode step: feed each row's last token (pad for stopped rows); positions and the padding mask
      // continue from the cache (see CausalLM.forward).
      const ids = tf.tensor2d(
        live.map((b) => next[b]!),
        [live.length, 1],
        'int32',
      );
      let out;
      try {
        out = model.forward(ids, { cache });
      } finally {
        ids.dispose();
      }
      cache!.dispose();
      cache = out.cache;
      out.hidden.dispose();
      last = out.logits;
    }
  } finally {
    cache?.dispose();
  }

  // Trim the response arrays to the longest response.
  let Tr = 1;
  for (let b = 0; b < B; b++) Tr = Math.max(Tr, lengths[b]!);
  const responseTokens = new Int32Array(B * Tr);
  const lp = new Float32Array(B * Tr);
  const truncated = new Uint8Array(B);
  for (let b = 0; b < B; b++) {
    responseTokens.set(tokens.subarray(b * maxNewTokens, b * maxNewTokens + Tr), b * Tr);
    lp.set(logprobs.subarray(b * maxNewTokens, b * maxNewTokens + Tr), b * Tr);
    truncated[b] = ended[b] ? 0 : 1;
  }
  const { policyVersion: _pv, ...sampling } = opts;
  return {
    batchSize: B,
    responsesPerPrompt: G,
    promptWidth: Tp,
    responseWidth: Tr,
    promptTokens,
    promptLengths,
    responseTokens,
    responseLengths: lengths,
    logprobs: lp,
    endedWithEos: ended,
    truncated,
    groupIds,
    options: sampling,
    policyVersion,
  };
}

/** `[B, Tp]` 0/1 mask of left-padded rows: the last `lengths[b]` columns of row b are real. */
export function leftMask(lengths: Int32Array, Tp: number): Float32Array {
  const m = new Float32Array(lengths.length * Tp);
  for (let b = 0; b < lengths.length; b++) m.fill(1, b * Tp + Tp - lengths[b]!, (b + 1) * Tp);
  return m;
}
