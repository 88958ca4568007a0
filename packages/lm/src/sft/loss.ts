/**
 * The causal-LM loss of SFT and pretraining: the token mean of −log p over the target tokens
 * (docs/algorithms.md §0: logits `[:, :-1]` predict ids `[:, 1:]`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { logprobsFromLogits, maskedMean, maskedSum } from '@relign/tensor';
import type { CollatedBatch } from '../data/collate.js';
import type { CausalLM } from '../model/causal-lm.js';

/** A collated batch on the device. The caller disposes it with {@link disposeBatchTensors}. */
export interface BatchTensors {
  /** `[B, T]` int32 token ids (right-padded). */
  inputIds: tf.Tensor2D;
  /** `[B, T]` int32 0/1, 1 for real tokens. */
  attentionMask: tf.Tensor2D;
  /** `[B, T − 1]` float32 0/1: 1 where `inputIds[:, 1:]` is a target (the collated `lossMask[:, 1:]`). */
  targetMask: tf.Tensor2D;
}

/**
 * Uploads a {@link CollatedBatch}. `T` must be at least 2 (pad with `collate(..., { padTo: 2 })` otherwise):
 * a one-token row has nothing to predict.
 */
export function batchToTensors(batch: CollatedBatch): BatchTensors {
  const B = batch.batchSize;
  const T = batch.seqLen;
  if (T < 2)
    throw new Error(
      `batchToTensors: seqLen is ${T}; causal-LM training needs T >= 2 (collate with padTo: 2).`,
    );
  const target = new Float32Array(B * (T - 1));
  for (let b = 0; b < B; b++) target.set(batch.lossMask.subarray(b * T + 1, (b + 1) * T), b * (T - 1));
  return {
    inputIds: tf.tensor2d(batch.inputIds, [B, T], 'int32'),
    attentionMask: tf.tensor2d(batch.attentionMask, [B, T], 'int32'),
    targetMask: tf.tensor2d(target, [B, T - 1], 'float32'),
  };
}

export function disposeBatchTensors(batch: BatchTensors): void {
  batch.inputIds.dispose();
  batch.attentionMask.dispose();
  batch.targetMask.dispose();
}

/** `[B, T − 1]` log-probabilities of each next token (float32). Positions outside `targetMask` are meaningless. */
function targetLogprobs(model: CausalLM, batch: BatchTensors): tf.Tensor2D {
  const { logits, hidden } = model.forward(batch.inputIds, { attentionMask: batch.attentionMask });
  hidden.dispose();
  const [B, T, V] = logits.shape;
  const pred = tf.slice(logits, [0, 0, 0], [B, T - 1, V]);
  const targets = tf.slice(batch.inputIds, [0, 1], [B, T - 1]);
  return logprobsFromLogits(pred, targets);
}

/**
 * Mean negative log-likelihood per target token over the whole batch (not a mean of per-row means, so
 * every completion token weighs the same): `−Σ mask·logp / Σ mask`. An all-zero mask gives 0.
 * Differentiable w.r.t. the model's variables; run it inside `tf.variableGrads` to train.
 *
 * @returns float32 scalar (the caller disposes it).
 */
export function causalLmLoss(model: CausalLM, batch: BatchTensors): tf.Scalar {
  return tf.tidy(() => tf.neg(maskedMean(targetLogprobs(model, batch), batch.targetMask)) as tf.Scalar);
}

/**
 * Summed negative log-likelihood over the targets (for exact token-weighted means across batches).
 * @returns float32 scalar (the caller disposes it).
 */
export function causalLmNllSum(model: CausalLM, batch: BatchTensors): tf.Scalar {
  return tf.tidy(() => tf.neg(maskedSum(targetLogprobs(model, batch), batch.targetMask)) as tf.Scalar);
}
