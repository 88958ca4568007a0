/**
 * Batching token sequences for a reward model with explicit lengths: padding on either side, and the
 * index of each row's last real token, located from the lengths — never from pad or EOS ids (with GPT-2
 * tokenizers pad = eos, and the EOS is the token to score).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TokenIds } from './inputs.js';

/** Which side the pads go: right (training, HF default) or left (generation-style batches, MOSS). */
export type PaddingSide = 'left' | 'right';

/** A padded batch in host memory, row-major `[B, T]`. */
export interface SequenceBatch {
  batchSize: number;
  seqLen: number;
  /** `[B, T]` ids; padded positions hold `padId`. */
  inputIds: Int32Array;
  /** `[B, T]` 1 for real tokens, 0 for pads (from the lengths). */
  attentionMask: Int32Array;
  /** `[B]` real lengths. */
  lengths: Int32Array;
  /** `[B]` position (in `0..T−1`) of each row's last real token: `length − 1` (right) or `T − 1` (left). */
  lastIndex: Int32Array;
  padding: PaddingSide;
}

/** The device copy of a {@link SequenceBatch}; dispose with {@link disposeSequenceTensors}. */
export interface SequenceTensors {
  /** `[B, T]` int32. */
  inputIds: tf.Tensor2D;
  /** `[B, T]` int32 0/1. */
  attentionMask: tf.Tensor2D;
  /** `[B, T]` float32 one-hot of `lastIndex` (selects the score of each row's last real token). */
  lastOneHot: tf.Tensor2D;
}

export interface PackOptions {
  /** Id written into padded positions (any valid id; masks come from lengths). Default 0. */
  padId?: number;
  /** Default `'right'`. */
  padding?: PaddingSide;
  /** Pad to this length instead of the longest row (>= the longest). */
  padTo?: number;
}

/**
 * Pads sequences into one batch.
 * @throws Error on an empty list, an empty sequence, a bad id, or `padTo` shorter than the longest row.
 */
export function packSequences(sequences: readonly TokenIds[], options: PackOptions = {}): SequenceBatch {
  const { padId = 0, padding = 'right' } = options;
  if (sequences.length === 0) throw new Error('packSequences: no sequences; a batch needs at least one row.');
  if (!Number.isInteger(padId) || padId < 0)
    throw new Error(`packSequences: padId must be a token id >= 0, got ${padId}.`);
  if (padding !== 'left' && padding !== 'right') {
    throw new Error(`packSequences: padding must be 'left' or 'right', got ${JSON.stringify(padding)}.`);
  }
  let longest = 0;
  sequences.forEach((s, i) => {
    if (s.length < 1) {
      throw new Error(`packSequences: row ${i} is empty; a reward model needs at least one token to score.`);
    }
    longest = Math.max(longest, s.length);
  });
  const T = options.padTo ?? longest;
  if (!Number.isInteger(T) || T < longest) {
    throw new Error(`packSequences: padTo (${options.padTo}) is shorter than the longest row (${longest}).`);
  }
  const B = sequences.length;
  const inputIds = new Int32Array(B * T).fill(padId);
  const attentionMask = new Int32Array(B * T);
  const lengths = new Int32Array(B);
  const lastIndex = new Int32Array(B);
  sequences.forEach((s, b) => {
    const L = s.length;
    const start = padding === 'right' ? b * T : b * T + (T - L);
    inputIds.set(s, start);
    attentionMask.fill(1, start, start + L);
    lengths[b] = L;
    lastIndex[b] = padding === 'right' ? L - 1 : T - 1;
  });
  return { batchSize: B, seqLen: T, inputIds, attentionMask, lengths, lastIndex, padding };
}

/** Uploads a {@link SequenceBatch}. The caller disposes the result with {@link disposeSequenceTensors}. */
export function sequenceTensors(batch: SequenceBatch): SequenceTensors {
  const { batchSize: B, seqLen: T } = batch;
  const oneHot = new Float32Array(B * T);
  for (let b = 0; b < B; b++) oneHot[b * T + batch.lastIndex[b]!] = 1;
  return {
    inputIds: tf.tensor2d(batch.inputIds, [B, T], 'int32'),
    attentionMask: tf.tensor2d(batch.attentionMask, [B, T], 'int32'),
    lastOneHot: tf.tensor2d(oneHot, [B, T], 'float32'),
  };
}

export function disposeSequenceTensors(t: SequenceTensors): void {
  t.inputIds.dispose();
  t.attentionMask.dispose();
  t.lastOneHot.dispose();
}

/**
 * `values[b, lastIndex[b]]` for each row, as a one-hot product-sum (differentiable; `gatherND` has no
 * gradient in tfjs). `values` must be finite at every position (a model's outputs at pads are).
 *
 * @param values `[B, T]`; `lastOneHot` `[B, T]` from {@link sequenceTensors}. @returns `[B]`.
 */
export function selectLast(values: tf.Tensor2D, lastOneHot: tf.Tensor2D): tf.Tensor1D {
  if (!tf.util.arraysEqual(values.shape, lastOneHot.shape)) {
    throw new Error(
      `selectLast: values [${values.shape}] and lastOneHot [${lastOneHot.shape}] must have the same shape.`,
    );
  }
  return tf.tidy(() => tf.sum(tf.mul(values, lastOneHot), 1) as tf.Tensor1D);
}
