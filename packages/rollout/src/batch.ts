/**
 * The rollout batch: sampled responses with their exact log-probs, in host typed arrays.
 *
 * Layout (docs/algorithms.md §4.1): prompts are left-padded to a common width Tp, responses right-padded to Tr, and
 * every row carries explicit lengths instead of relying on a pad id (PAD may equal EOS, docs/algorithms.md §4.1
 * [CHOICE]). Response position t of row b is valid iff `t < responseLengths[b]`; the stop token, when
 * present, is the last valid token (docs/algorithms.md §0: the response mask includes EOS).
 *
 * Host arrays (not tensors) because batches live in the replay buffer between passes and are re-padded
 * into minibatches; tensors are made per pass (see `computeLogprobs`, `responseMask`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SamplingOptions } from './options.js';

/**
 * A batch of sampled responses. "Per token" fields are row-major `[B, T]` flat arrays, "per sequence"
 * fields have one entry per row.
 */
export interface RolloutBatch {
  /** B, the number of rows: prompts × `responsesPerPrompt`. */
  batchSize: number;
  /** G, responses per prompt: rows `g·G .. g·G + G − 1` answer the same prompt (kept adjacent). */
  responsesPerPrompt: number;
  /** Tp, the width of `promptTokens` (the longest prompt). */
  promptWidth: number;
  /** Tr, the width of `responseTokens` (the longest response; at most `options.maxNewTokens`). */
  responseWidth: number;
  /** Per token, int32 `[B, Tp]`: the prompt, left-padded with `options.padTokenId`. */
  promptTokens: Int32Array;
  /** Per sequence, int32 `[B]`: real prompt tokens (the last `promptLengths[b]` columns of the row). */
  promptLengths: Int32Array;
  /** Per token, int32 `[B, Tr]`: the response, right-padded with `options.padTokenId`. */
  responseTokens: Int32Array;
  /** Per sequence, int32 `[B]`, >= 1: response tokens including the stop token if one was sampled. */
  responseLengths: Int32Array;
  /**
   * Per token, float32 `[B, Tr]`: log-prob of each sampled token under the distribution it was drawn
   * from (temperature, top-k, top-p applied, renormalised; 0 for greedy). 0 at padding. For RL the trainer
   * replaces truncated (top-k/top-p) ones with full-vocabulary log-probs (`collectRollout` of @relign/core),
   * the distribution the loss and the reference use (docs/algorithms.md §4.2).
   */
  logprobs: Float32Array;
  /** Per sequence, uint8 `[B]`: 1 if the response ends with a stop token (`options.stopTokenIds`). */
  endedWithEos: Uint8Array;
  /** Per sequence, uint8 `[B]`: 1 if the response reached `maxNewTokens` without a stop token. */
  truncated: Uint8Array;
  /**
   * Per sequence, int32 `[B]`: the group (prompt) of each row, equal within a group and distinct between
   * groups. From `generate`: the prompt's index in the `prompts` argument; from the replay buffer: the
   * group's serial number there.
   */
  groupIds: Int32Array;
  /** The options the batch was sampled with (all fields resolved). */
  options: SamplingOptions;
  /** Version of the policy that sampled the batch (for a buffer minibatch: the oldest of its rows). */
  policyVersion: number;
}

function fail(fn: string, msg: string): never {
  throw new Error(`${fn}: ${msg}`);
}

function checkArray(
  batch: RolloutBatch,
  field: keyof RolloutBatch,
  ctor: Int32ArrayConstructor | Float32ArrayConstructor | Uint8ArrayConstructor,
  length: number,
  shape: string,
  fn: string,
): void {
  const a = batch[field] as unknown;
  if (!(a instanceof ctor)) {
    fail(
      fn,
      `batch.${field} must be a ${ctor.name} ${shape}, got ${a === undefined ? 'undefined' : typeof a}`,
    );
  }
  if (a.length !== length) {
    fail(fn, `batch.${field} has ${a.length} entries; its shape ${shape} needs ${length}`);
  }
}

/**
 * Checks a batch's shapes and invariants: array sizes, lengths within the token arrays (prompt >= 1,
 * response in [1, Tr]), groups of `responsesPerPrompt` adjacent rows with distinct ids, non-negative
 * token ids and finite log-probs at valid positions.
 *
 * @param vocabSize when given, token ids must also be below it.
 * @throws Error naming the field, the row and the fix.
 */
export function validateRolloutBatch(
  batch: RolloutBatch,
  fn = 'validateRolloutBatch',
  vocabSize?: number,
): void {
  if (batch === null || typeof batch !== 'object') fail(fn, 'batch must be a RolloutBatch object');
  const { batchSize: B, responsesPerPrompt: G, promptWidth: Tp, responseWidth: Tr } = batch;
  for (const [name, v, min] of [
    ['batchSize', B, 1],
    ['responsesPerPrompt', G, 1],
    ['promptWidth', Tp, 1],
    ['responseWidth', Tr, 1],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min)
      fail(fn, `batch.${name} must be an integer >= ${min}, got ${String(v)}`);
  }
  if (B % G !== 0) {
    fail(fn, `batch.batchSize ${B} is not a multiple of responsesPerPrompt ${G}: a group has the wrong size`);
  }
  checkArray(batch, 'promptTokens', Int32Array, B * Tp, `[B, Tp] = [${B}, ${Tp}]`, fn);
  checkArray(batch, 'promptLengths', Int32Array, B, `[B] = [${B}]`, fn);
  checkArray(batch, 'responseTokens', Int32Array, B * Tr, `[B, Tr] = [${B}, ${Tr}]`, fn);
  checkArray(batch, 'responseLengths', Int32Array, B, `[B] = [${B}]`, fn);
  checkArray(batch, 'logprobs', Float32Array, B * Tr, `[B, Tr] = [${B}, ${Tr}]`, fn);
  checkArray(batch, 'endedWithEos', Uint8Array, B, `[B] = [${B}]`, fn);
  checkArray(batch, 'truncated', Uint8Array, B, `[B] = [${B}]`, fn);
  checkArray(batch, 'groupIds', Int32Array, B, `[B] = [${B}]`, fn);
  if (!Number.isSafeInteger(batch.policyVersion) || batch.policyVersion < 0) {
    fail(fn, `batch.policyVersion must be an integer >= 0, got ${String(batch.policyVersion)}`);
  }
  if (batch.options === null || typeof batch.options !== 'object') {
    fail(fn, 'batch.options (the sampling options) is missing');
  }
  for (let b = 0; b < B; b++) {
    const lp = batch.promptLengths[b]!;
    if (lp < 1 || lp > Tp) {
      fail(
        fn,
        `batch.promptLengths[${b}] = ${lp} is outside [1, promptWidth = ${Tp}] (length beyond the token array)`,
      );
    }
    const lr = batch.responseLengths[b]!;
    if (lr < 1 || lr > Tr) {
      fail(
        fn,
        `batch.responseLengths[${b}] = ${lr} is outside [1, responseWidth = ${Tr}] (length beyond the token array)`,
      );
    }
    for (let t = 0; t < lr; t++) {
      if (!Number.isFinite(batch.logprobs[b * Tr + t]!)) {
        fail(fn, `batch.logprobs[${b}, ${t}] = ${batch.logprobs[b * Tr + t]} is not finite`);
      }
    }
  }
  checkIds(batch.promptTokens, 'promptTokens', Tp, fn, vocabSize);
  checkIds(batch.responseTokens, 'responseTokens', Tr, fn, vocabSize);
  const seen = new Set<number>();
  for (let g = 0; g < B / G; g++) {
    const id = batch.groupIds[g * G]!;
    for (let j = 1; j < G; j++) {
      if (batch.groupIds[g * G + j] !== id) {
        fail(
          fn,
          `batch.groupIds[${g * G + j}] = ${batch.groupIds[g * G + j]} differs from groupIds[${g * G}] = ${id}: ` +
            `the ${G} responses of a prompt must be adjacent rows with one group id (wrong group size)`,
        );
      }
    }
    if (seen.has(id)) fail(fn, `batch.groupIds: group id ${id} appears in two separate groups`);
    seen.add(id);
  }
}

function checkIds(
  ids: Int32Array,
  field: string,
  width: number,
  fn: string,
  vocabSize: number | undefined,
): void {
  const hi = vocabSize ?? Infinity;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= hi) {
      fail(
        fn,
        `batch.${field}[${Math.floor(i / width)}, ${i % width}] = ${id} is not a token id in [0, ${hi}) ` +
          '(padding must be a valid id too, e.g. the EOS id)',
      );
    }
  }
}

/** Host response mask `[B, Tr]`: 1 at valid response positions (stop token included), else 0. */
export function responseMaskArray(batch: RolloutBatch): Float32Array {
  const { batchSize: B, responseWidth: Tr } = batch;
  const m = new Float32Array(B * Tr);
  for (let b = 0; b < B; b++) m.fill(1, b * Tr, b * Tr + batch.responseLengths[b]!);
  return m;
}

/**
 * The response mask as a float32 tensor `[B, Tr]` (per token): 1 for real response tokens including the
 * stop token, 0 for padding (docs/algorithms.md §0 `m_t`). The caller disposes it.
 */
export function responseMask(batch: RolloutBatch): tf.Tensor2D {
  return tf.tensor2d(responseMaskArray(batch), [batch.batchSize, batch.responseWidth], 'float32');
}
