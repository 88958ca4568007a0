/**
 * Batching of tokenized examples: right padding, explicit lengths, and the completion loss mask.
 */
import type { TokenizedExample } from './tokenize.js';

/** A padded batch in host memory, row-major `[B, T]`. */
export interface CollatedBatch {
  /** B. */
  batchSize: number;
  /** T: the longest example (or `padTo`). */
  seqLen: number;
  /** `[B, T]` token ids; positions `>= lengths[b]` hold `padId`. */
  inputIds: Int32Array;
  /** `[B, T]` 1 for real tokens, 0 for padding (from the lengths, not from the ids). */
  attentionMask: Int32Array;
  /**
   * `[B, T]` 1 where token `t` of row `b` is a training target: `max(promptLength, 1) <= t < length`,
   * i.e. the completion and its EOS, or where the example's `targetMask` is 1. Token 0 is never a target (nothing precedes it). Pair it with the
   * causal shift: logits `[:, :-1]` predict ids `[:, 1:]`, weighted by `lossMask[:, 1:]` (docs/algorithms.md §0).
   */
  lossMask: Float32Array;
  /** `[B]` real lengths. */
  lengths: Int32Array;
  /** `[B]` prompt lengths. */
  promptLengths: Int32Array;
  /** Σ lossMask: the number of target tokens in the batch. */
  numTargets: number;
  /** Σ lengths: real (non-pad) tokens in the batch. */
  numTokens: number;
}

export interface CollateOptions {
  /** Id written into padded positions (may equal EOS: masks come from lengths, never from ids). */
  padId: number;
  /** Pad every row to this length instead of the longest example (must be >= the longest). */
  padTo?: number;
}

/**
 * Right-pads examples into one batch.
 *
 * Right padding keeps every real token at its natural position (0, 1, ...), so the model's default
 * positions (`cumsum(mask) − 1`) are the same as for the unpadded sequence and, the attention being causal,
 * padding after a token cannot change its logits.
 *
 * @throws Error on an empty list, an inconsistent example (`length`, `promptLength`, `ids`), or `padTo` too short.
 */
export function collate(examples: readonly TokenizedExample[], options: CollateOptions): CollatedBatch {
  const { padId } = options;
  if (examples.length === 0)
    throw new Error('collate: examples is empty; a batch needs at least one example.');
  if (!Number.isInteger(padId) || padId < 0)
    throw new Error(`collate: padId must be a token id >= 0 (got ${padId}).`);
  let longest = 0;
  examples.forEach((ex, i) => {
    if (!(ex.ids instanceof Int32Array) || ex.ids.length !== ex.length || ex.length < 1) {
      throw new Error(
        `collate: examples[${i}] must have ids (Int32Array) of length \`length\` >= 1 (got ${ex.length}).`,
      );
    }
    if (!Number.isInteger(ex.promptLength) || ex.promptLength < 0 || ex.promptLength > ex.length) {
      throw new Error(
        `collate: examples[${i}].promptLength must be in [0, length=${ex.length}] (got ${ex.promptLength}).`,
      );
    }
    if (ex.targetMask !== undefined && ex.targetMask.length !== ex.length) {
      throw new Error(
        `collate: examples[${i}].targetMask has ${ex.targetMask.length} entries, not length=${ex.length}.`,
      );
    }
    longest = Math.max(longest, ex.length);
  });
  const T = options.padTo ?? longest;
  if (!Number.isInteger(T) || T < longest) {
    throw new Error(`collate: padTo (${options.padTo}) is shorter than the longest example (${longest}).`);
  }
  const B = examples.length;
  const inputIds = new Int32Array(B * T).fill(padId);
  const attentionMask = new Int32Array(B * T);
  const lossMask = new Float32Array(B * T);
  const lengths = new Int32Array(B);
  const promptLengths = new Int32Array(B);
  let numTargets = 0;
  let numTokens = 0;
  examples.forEach((ex, b) => {
    const row = b * T;
    inputIds.set(ex.ids, row);
    attentionMask.fill(1, row, row + ex.length);
    if (ex.targetMask !== undefined) {
      // Multi-turn conversations: only the assistant turns are targets (token 0 never is).
      for (let t = 1; t < ex.length; t++) {
        if (ex.targetMask[t] === 1) {
          lossMask[row + t] = 1;
          numTargets++;
        }
      }
    } else {
      const first = Math.max(ex.promptLength, 1);
      if (first < ex.length) {
        lossMask.fill(1, row + first, row + ex.length);
        numTargets += ex.length - first;
      }
    }
    lengths[b] = ex.length;
    promptLengths[b] = ex.promptLength;
    numTokens += ex.length;
  });
  return {
    batchSize: B,
    seqLen: T,
    inputIds,
    attentionMask,
    lossMask,
    lengths,
    promptLengths,
    numTargets,
    numTokens,
  };
}
