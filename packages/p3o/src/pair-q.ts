/**
 * The quantities both P3O losses are built from (docs/algorithms.md §1.2, §1.4 "Logged"): the detached
 * KL-regularised reward difference `q` of a pair, and the statistics logged under `p3o/*` with every loss.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Statistics logged with every P3O loss (stable metric names, docs/algorithms.md §1.4 "Logged"). All are float32 scalars
 * with no gradient path into the loss.
 */
export type P3OStats = {
  /** The minibatch loss (a clone of `loss`, so a logger may dispose it independently). */
  'loss/policy': tf.Scalar;
  /** Fraction of clipped terms: V2 `mean[a_clip > a]` over pairs; V1 over the 2B per-response terms. */
  'policy/clipfrac': tf.Scalar;
  /** Mean importance-sampling ratio, before the `[1/c, c]` clamp (V2: ρ1ρ2 per pair; V1: ρ1 and ρ2). */
  'policy/ratio_mean': tf.Scalar;
  /** Smallest importance-sampling ratio, before the clamp. */
  'policy/ratio_min': tf.Scalar;
  /** Largest importance-sampling ratio, before the clamp. */
  'policy/ratio_max': tf.Scalar;
  /** Mean of the detached `q` (docs/algorithms.md §1.2). */
  'p3o/q_mean': tf.Scalar;
  /** Population (biased) standard deviation of `q` over the minibatch; 0 for B = 1. */
  'p3o/q_std': tf.Scalar;
  /** Mean of `|r1 − r2|` = reward of the higher- minus the lower-reward response (no KL term). */
  'p3o/reward_diff_mean': tf.Scalar;
  /** Mean current log-ratio `L_θ` of the higher-reward response of each pair (y1 on ties). */
  'p3o/logratio_chosen': tf.Scalar;
  /** Mean current log-ratio `L_θ` of the lower-reward response of each pair. */
  'p3o/logratio_rejected': tf.Scalar;
  /** `logratio_chosen − logratio_rejected`. */
  'p3o/logratio_gap': tf.Scalar;
};

/** What a P3O loss returns. Every tensor is owned by the caller (dispose it, or let a tidy do it). */
export interface P3OLossResult {
  /** Minibatch loss, mean over pairs (docs/algorithms.md §1.8b); minimise it. Carries the gradient. */
  loss: tf.Scalar;
  /** `loss_i` per pair, shape `[B]` (carries the gradient; `loss` is its mean). */
  perPairLoss: tf.Tensor1D;
  /** Logged statistics, see {@link P3OStats}. */
  stats: P3OStats;
}

/**
 * `q = (r1 − r2) − β (L1 − L2)` from detached log-ratios (docs/algorithms.md §1.2, P3O-1), all `[B]`. The reward difference
 * is taken first, so a per-pair shift δ added to both rewards cancels before anything else is rounded
 * (docs/algorithms.md §1.10).
 */
export function pairQ(
  r1: tf.Tensor1D,
  r2: tf.Tensor1D,
  sgL1: tf.Tensor1D,
  sgL2: tf.Tensor1D,
  klCoef: number,
): tf.Tensor1D {
  return tf.sub(tf.sub(r1, r2), tf.mul(tf.sub(sgL1, sgL2), klCoef));
}

/** The statistics that depend only on q, rewards and detached log-ratios (docs/algorithms.md §1.4 "Logged"); inputs `[B]`. */
export function pairStats(
  q: tf.Tensor1D,
  r1: tf.Tensor1D,
  r2: tf.Tensor1D,
  sgL1: tf.Tensor1D,
  sgL2: tf.Tensor1D,
): Pick<
  P3OStats,
  | 'p3o/q_mean'
  | 'p3o/q_std'
  | 'p3o/reward_diff_mean'
  | 'p3o/logratio_chosen'
  | 'p3o/logratio_rejected'
  | 'p3o/logratio_gap'
> {
  const { mean, variance } = tf.moments(q);
  // y1 is "chosen" when r1 >= r2 (ties go to y1); the condition is data, never differentiated.
  const firstChosen = tf.greaterEqual(r1, r2);
  const chosen = tf.mean(tf.where(firstChosen, sgL1, sgL2)) as tf.Scalar;
  const rejected = tf.mean(tf.where(firstChosen, sgL2, sgL1)) as tf.Scalar;
  return {
    'p3o/q_mean': mean as tf.Scalar,
    'p3o/q_std': tf.sqrt(variance) as tf.Scalar,
    'p3o/reward_diff_mean': tf.mean(tf.abs(tf.sub(r1, r2))) as tf.Scalar,
    'p3o/logratio_chosen': chosen,
    'p3o/logratio_rejected': rejected,
    'p3o/logratio_gap': tf.sub(chosen, rejected),
  };
}
