/**
 * Held-out evaluation of a reward model on labelled pairs: accuracy, mean margin, Bradley–Terry loss.
 */
import * as tf from '@tensorflow/tfjs-core';
import { pairMetrics, type PairMetrics } from './bradley-terry.js';
import type { RewardModel } from './reward-model.js';
import { disposePairBatch, pairBatch } from './rm-loss.js';
import type { TokenizedPair } from './tokenize-pairs.js';

export interface EvaluateRewardModelOptions {
  /** Pairs per forward pass (2 rows each). Default 16. */
  batchSize?: number;
  /** Pad id (any valid id). Default 0. */
  padId?: number;
  /** Loss margin of pairs without their own. Default 0. */
  margin?: number;
}

/** {@link PairMetrics} plus the scores behind them. */
export interface RewardModelEval extends PairMetrics {
  /** `[N]` scores of the chosen and rejected sequences, in input order. */
  chosen: Float32Array;
  rejected: Float32Array;
}

/**
 * Scores every pair (no gradients; no tensors remain) and reports accuracy (`r_c > r_r`, ties ½), mean
 * margin `r_c − r_r` and the mean Bradley–Terry loss. The scores stay on the device until one asynchronous
 * read at the end.
 *
 * @throws Error when `pairs` is empty.
 */
export async function evaluateRewardModel(
  rm: RewardModel,
  pairs: readonly TokenizedPair[],
  options: EvaluateRewardModelOptions = {},
): Promise<RewardModelEval> {
  const { batchSize = 16, padId = 0, margin = 0 } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`evaluateRewardModel: batchSize must be an integer >= 1, got ${batchSize}.`);
  }
  if (pairs.length === 0) throw new Error('evaluateRewardModel: no pairs to evaluate.');
  const chosen = new Float32Array(pairs.length);
  const rejected = new Float32Array(pairs.length);
  // Each batch's scores are `[chosen ×n, rejected ×n]`; all batches are read back at once.
  const scores: tf.Tensor1D[] = [];
  let v: Float32Array;
  try {
    for (let start = 0; start < pairs.length; start += batchSize) {
      const batch = pairBatch(pairs.slice(start, start + batchSize), { padId });
      try {
        scores.push(rm.scoreTensors(batch.sequences));
      } finally {
        disposePairBatch(batch);
      }
    }
    const all = tf.concat(scores);
    try {
      v = (await all.data()) as Float32Array;
    } finally {
      all.dispose();
    }
  } finally {
    tf.dispose(scores);
  }
  for (let start = 0; start < pairs.length; start += batchSize) {
    const n = Math.min(batchSize, pairs.length - start);
    chosen.set(v.subarray(2 * start, 2 * start + n), start);
    rejected.set(v.subarray(2 * start + n, 2 * start + 2 * n), start);
  }
  const margins = pairs.map((p) => p.margin ?? margin);
  return { ...pairMetrics(chosen, rejected, margins), chosen, rejected };
}
