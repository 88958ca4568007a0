/**
 * The Bradley–Terry pairwise loss of reward-model training (docs/algorithms.md §2.2) and the pair metrics reported with
 * it (accuracy, mean margin).
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Per-pair Bradley–Terry loss `−log σ(r_c − r_r − m)`, computed as `softplus(−(r_c − r_r − m))`: exact and
 * finite for any margin size (docs/algorithms.md §0), with gradient `−σ(−u)` w.r.t. `r_c`. (`tf.logSigmoid` is avoided:
 * its gradient breaks when its input is computed inside the differentiated function.) MOSS-RLHF writes the
 * loss as `−log(σ(u) + 1e-5)`, which caps it near 11.5; this form has no cap.
 *
 * @param chosen `[B]` scores of the preferred responses.
 * @param rejected `[B]` scores of the other responses.
 * @param margin optional margin `m`: a number, or `[B]` per pair (TRL's `margin` column). Default 0.
 * @returns `[B]` float32 losses. Differentiable w.r.t. both score tensors.
 */
export function bradleyTerryLosses(
  chosen: tf.Tensor1D,
  rejected: tf.Tensor1D,
  margin: number | tf.Tensor1D = 0,
): tf.Tensor1D {
  if (!(chosen instanceof tf.Tensor) || !(rejected instanceof tf.Tensor)) {
    throw new TypeError('bradleyTerryLoss: chosen and rejected must be tf.Tensor1D score vectors.');
  }
  if (chosen.rank !== 1 || rejected.rank !== 1 || chosen.shape[0] !== rejected.shape[0]) {
    throw new Error(
      `bradleyTerryLoss: chosen [${chosen.shape}] and rejected [${rejected.shape}] must both be [B] with the same B.`,
    );
  }
  if (margin instanceof tf.Tensor) {
    if (margin.rank !== 1 || margin.shape[0] !== chosen.shape[0]) {
      throw new Error(
        `bradleyTerryLoss: margin must be a number or [${chosen.shape[0]}], got [${margin.shape}].`,
      );
    }
  } else if (typeof margin !== 'number' || !Number.isFinite(margin)) {
    throw new Error(
      `bradleyTerryLoss: margin must be a finite number or a [B] tensor, got ${String(margin)}.`,
    );
  }
  return tf.tidy(() => {
    let u: tf.Tensor = tf.sub(chosen, rejected);
    if (margin instanceof tf.Tensor || margin !== 0) u = tf.sub(u, margin);
    return tf.softplus(tf.neg(u)) as tf.Tensor1D;
  });
}

/** Mean over pairs of {@link bradleyTerryLosses}: the reward-model loss (docs/algorithms.md §2.2 without the LM term). @returns scalar. */
export function bradleyTerryLoss(
  chosen: tf.Tensor1D,
  rejected: tf.Tensor1D,
  margin: number | tf.Tensor1D = 0,
): tf.Scalar {
  return tf.tidy(() => tf.mean(bradleyTerryLosses(chosen, rejected, margin)) as tf.Scalar);
}

/** Pair metrics of a reward model on labelled pairs. */
export interface PairMetrics {
  /** Fraction of pairs with `r_c > r_r`; an exact tie counts ½ (a constant model scores 0.5). */
  accuracy: number;
  /** Mean of `r_c − r_r`. */
  meanMargin: number;
  /** Mean Bradley–Terry loss `softplus(−(r_c − r_r − m))` (float64). */
  loss: number;
  /** Number of pairs. */
  count: number;
}

/** `log(1 + e^x)` in float64 without overflow. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * Accuracy, mean margin and loss of scores on the host (float64 sums).
 * @param margins optional per-pair margins (for the loss only).
 * @throws Error when lengths differ or the set is empty.
 */
export function pairMetrics(
  chosen: ArrayLike<number>,
  rejected: ArrayLike<number>,
  margins?: ArrayLike<number>,
): PairMetrics {
  const n = chosen.length;
  if (rejected.length !== n || (margins !== undefined && margins.length !== n)) {
    throw new Error(
      `pairMetrics: chosen (${n}), rejected (${rejected.length})${margins ? ` and margins (${margins.length})` : ''} must have the same length.`,
    );
  }
  if (n === 0) throw new Error('pairMetrics: no pairs to score.');
  let wins = 0;
  let margin = 0;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const d = chosen[i]! - rejected[i]!;
    wins += d > 0 ? 1 : d === 0 ? 0.5 : 0;
    margin += d;
    loss += softplus(-(d - (margins?.[i] ?? 0)));
  }
  return { accuracy: wins / n, meanMargin: margin / n, loss: loss / n, count: n };
}
