/**
 * Per-token KL estimators (docs/algorithms.md §4.3, Schulman's k1/k2/k3; test vector T6).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkSameShape, checkTensor, describeValue } from '../validate.js';

const FN = 'klEstimate';

/** Which estimator: `k1` = Δ, `k2` = Δ²/2, `k3` = e^{−Δ} − 1 + Δ. */
export type KlEstimator = 'k1' | 'k2' | 'k3';

/**
 * Elementwise single-sample estimate of `KL(π_θ ‖ π_ref)` from the log-probs of tokens sampled from π_θ,
 * with `Δ = logp − refLogp` (docs/algorithms.md §4.3):
 * - `k1 = Δ`: unbiased, high variance, can be negative (default for reward shaping, docs/algorithms.md §4.4).
 * - `k2 = Δ²/2`: biased (second-order agreement), low variance, ≥ 0.
 * - `k3 = (e^u − 1) − u` with `u = −Δ`: unbiased, low variance, ≥ 0.
 *
 * No clamping is applied (OpenRLHF clamps to [−10, 10]; do that at the call site if wanted).
 *
 * @param logp float32 log-probs under π_θ (any shape, e.g. `[B, T]`).
 * @param refLogp float32 log-probs under π_ref, same shape.
 * @returns float32, same shape. Masked positions are not special-cased: reduce with maskedSum/maskedMean.
 */
export function klEstimate(logp: tf.Tensor, refLogp: tf.Tensor, estimator: KlEstimator): tf.Tensor {
  checkTensor(logp, 'logp', FN);
  checkTensor(refLogp, 'refLogp', FN);
  checkSameShape(logp, refLogp, 'logp', 'refLogp', FN);
  if (estimator !== 'k1' && estimator !== 'k2' && estimator !== 'k3') {
    throw new Error(`${FN}: \`estimator\` must be 'k1', 'k2' or 'k3', got ${describeValue(estimator)}.`);
  }
  return tf.tidy(() => {
    const delta = tf.sub(logp, refLogp);
    if (estimator === 'k1') return delta;
    if (estimator === 'k2') return tf.mul(tf.square(delta), 0.5);
    // k3 = exp(−Δ) − 1 + Δ; written with expm1 to keep precision when Δ ≈ 0.
    return tf.add(tf.expm1(tf.neg(delta)), delta);
  });
}
