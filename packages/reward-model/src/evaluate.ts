/**
 * Held-out evaluation of a reward model on labelled pairs: accuracy, mean margin, Bradley–Terry loss.
 */
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
 * margin `r_c − r_r` and the mean Bradley–Terry loss.
 *
 * @throws Error when `pairs` is empty.
 */
export function evaluateRewardModel(
  rm: RewardModel,
  pairs: readonly TokenizedPair[],
  options: EvaluateRewardModelOptions = {},
): RewardModelEval {
  const { batchSize = 16, padId = 0, margin = 0 } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`evaluateRewardModel: batchSize must be an integer >= 1, got ${batchSize}.`);
  }
  if (pairs.length === 0) throw new Error('evaluateRewardModel: no pairs to evaluate.');
  const chosen = new Float32Array(pairs.length);
  const rejected = new Float32Array(pairs.length);
  for (let start = 0; start < pairs.length; start += batchSize) {
    const slice = pairs.slice(start, start + batchSize);
    const batch = pairBatch(slice, { padId });
    try {
      const s = rm.scoreTensors(batch.sequences);
      const v = s.dataSync() as Float32Array;
      s.dispose();
      chosen.set(v.subarray(0, slice.length), start);
      rejected.set(v.subarray(slice.length), start);
    } finally {
      disposePairBatch(batch);
    }
  }
  const margins = pairs.map((p) => p.margin ?? margin);
  return { ...pairMetrics(chosen, rejected, margins), chosen, rejected };
}
