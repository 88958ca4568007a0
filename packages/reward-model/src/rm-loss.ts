/**
 * The reward-model training loss of docs/algorithms.md §2.2:
 *
 *     L_RM = mean_pairs[ −log σ(r(x, y_w) − r(x, y_l) − m) ]  +  λ_lm · CE_LM(y_w | x)
 *
 * with `CE_LM` the token-mean next-token cross-entropy of the backbone's LM head on the chosen response
 * tokens (EOS included; prompt positions and pads excluded), and an optional margin `m` (TRL).
 */
import * as tf from '@tensorflow/tfjs-core';
import { logprobsFromLogits, maskedMean } from '@relign/tensor';
import { bradleyTerryLosses } from './bradley-terry.js';
import type { RewardModel } from './reward-model.js';
import {
  disposeSequenceTensors,
  packSequences,
  selectLast,
  sequenceTensors,
  type SequenceTensors,
} from './sequence-batch.js';
import type { TokenizedPair } from './tokenize-pairs.js';

/** A batch of pairs on the device; dispose with {@link disposePairBatch}. */
export interface PairBatch {
  /** Number of pairs B. */
  numPairs: number;
  /** `[2B, T]` right-padded rows: chosen sequences in rows `0..B−1`, rejected in `B..2B−1` (one forward pass). */
  sequences: SequenceTensors;
  /** `[B]` margins: each pair's own, else the default of {@link pairBatch}; absent when all are 0. */
  margins?: tf.Tensor1D;
  /** `[B, T−1]` float32 1 where `inputIds[b, t+1]` of a chosen row is a response token (the LM-term targets). */
  lmTargetMask: tf.Tensor2D;
  /** Real tokens in the batch (both sides). */
  numTokens: number;
}

/**
 * Builds the device batch of `pairs` (right padding, explicit lengths; `T >= 2` so the LM term has a shift).
 * `margin` is the loss margin of pairs that have none of their own (default 0).
 * @throws Error on an empty list.
 */
export function pairBatch(
  pairs: readonly TokenizedPair[],
  { padId = 0, margin = 0 }: { padId?: number; margin?: number } = {},
): PairBatch {
  if (pairs.length === 0) throw new Error('pairBatch: no pairs; a batch needs at least one pair.');
  if (!Number.isFinite(margin)) throw new Error(`pairBatch: margin must be a finite number, got ${margin}.`);
  const B = pairs.length;
  const rows = [...pairs.map((p) => p.chosen.ids), ...pairs.map((p) => p.rejected.ids)];
  const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
  const host = packSequences(rows, { padId, padding: 'right', padTo: Math.max(longest, 2) });
  const T = host.seqLen;
  const target = new Float32Array(B * (T - 1));
  let numTokens = 0;
  pairs.forEach((p, b) => {
    // Target position t (0-based in [B, T−1]) predicts token t+1: response tokens are promptLength..length−1.
    const first = Math.max(p.chosen.promptLength, 1);
    if (first < p.chosen.length) target.fill(1, b * (T - 1) + first - 1, b * (T - 1) + p.chosen.length - 1);
    numTokens += p.chosen.length + p.rejected.length;
  });
  const batch: PairBatch = {
    numPairs: B,
    sequences: sequenceTensors(host),
    lmTargetMask: tf.tensor2d(target, [B, T - 1], 'float32'),
    numTokens,
  };
  if (margin !== 0 || pairs.some((p) => p.margin !== undefined)) {
    batch.margins = tf.tensor1d(
      pairs.map((p) => p.margin ?? margin),
      'float32',
    );
  }
  return batch;
}

export function disposePairBatch(batch: PairBatch): void {
  disposeSequenceTensors(batch.sequences);
  batch.margins?.dispose();
  batch.lmTargetMask.dispose();
}

/** Options of {@link rewardModelLoss}. */
export interface RewardModelLossOptions {
  /** λ_lm of docs/algorithms.md §2.2 (MOSS `reward_lm_loss_factor`). Default 0 (then the LM head is not even run). */
  lmCoef?: number;
}

/** What {@link rewardModelLoss} returns; the caller owns (disposes) every tensor. */
export interface RewardModelLossResult {
  /** The total loss (scalar), differentiable. */
  loss: tf.Scalar;
  /** Bradley–Terry part (scalar). */
  btLoss: tf.Scalar;
  /** `CE_LM` (scalar), present when `lmCoef > 0`. */
  lmLoss?: tf.Scalar;
  /** `[B]` scores of chosen and rejected sequences. */
  chosen: tf.Tensor1D;
  rejected: tf.Tensor1D;
}

/**
 * The docs/algorithms.md §2.2 loss of one batch. Differentiable w.r.t. the reward model's variables; run it inside
 * `tf.variableGrads` (keeping the extra outputs with `tf.keep`) to train.
 */
export function rewardModelLoss(
  rm: RewardModel,
  batch: PairBatch,
  options: RewardModelLossOptions = {},
): RewardModelLossResult {
  const { lmCoef = 0 } = options;
  if (!(lmCoef >= 0) || !Number.isFinite(lmCoef)) {
    throw new Error(`rewardModelLoss: lmCoef must be a finite number >= 0, got ${lmCoef}.`);
  }
  const B = batch.numPairs;
  const out = tf.tidy(() => {
    const seq = batch.sequences;
    let hidden: tf.Tensor3D;
    let lmLoss: tf.Scalar | undefined;
    if (lmCoef > 0) {
      const out = rm.backbone.forward(seq.inputIds, { attentionMask: seq.attentionMask });
      hidden = out.hidden;
      const [, T, V] = out.logits.shape;
      const pred = tf.slice(out.logits, [0, 0, 0], [B, T - 1, V]);
      const targets = tf.slice(seq.inputIds, [0, 1], [B, T - 1]);
      lmLoss = tf.neg(maskedMean(logprobsFromLogits(pred, targets), batch.lmTargetMask)) as tf.Scalar;
    } else {
      hidden = rm.backbone.forwardHidden(seq.inputIds, { attentionMask: seq.attentionMask }).hidden;
    }
    const scores = selectLast(rm.head.apply(hidden), seq.lastOneHot);
    const chosen = tf.slice(scores, [0], [B]);
    const rejected = tf.slice(scores, [B], [B]);
    const btLoss = tf.mean(bradleyTerryLosses(chosen, rejected, batch.margins ?? 0)) as tf.Scalar;
    const loss = lmLoss === undefined ? btLoss : (tf.add(btLoss, tf.mul(lmLoss, lmCoef)) as tf.Scalar);
    return lmLoss === undefined
      ? { loss, btLoss, chosen, rejected }
      : { loss, btLoss, chosen, rejected, lmLoss };
  });
  return out as RewardModelLossResult;
}
