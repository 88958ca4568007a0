/**
 * Masked whitening, TRL's `masked_whiten` (docs/algorithms.md §0, §4.5; test vector T1).
 */
import * as tf from '@tensorflow/tfjs-core';
import { maskedMeanVar } from './masked.js';
import { checkSameShape, checkTensor } from '../validate.js';

const FN = 'maskedWhiten';

export interface MaskedWhitenOptions {
  /** Unbiased (TRL, default true) or biased (OpenRLHF/MOSS) variance; see {@link maskedVar}. */
  unbiased?: boolean;
  /** Subtract the mean (default). `false` adds it back after scaling (TRL `shift_mean=False`, used to whiten rewards). */
  shiftMean?: boolean;
  /** Added to the variance under the square root. Default 1e-8 (TRL). */
  eps?: number;
}

/**
 * `(values − μ) · rsqrt(σ² + eps)` (plus μ when `shiftMean` is false), with μ and σ² the masked mean and
 * variance over positions where `mask != 0`.
 *
 * As in TRL, the statistics ignore masked positions but the whitened tensor is returned at **all**
 * positions (masked ones are not zeroed: values there are whatever the formula gives, NaN if the input was
 * NaN); zero or select them yourself if downstream code needs it.
 *
 * NaN safety: the statistics are computed from a select of the input, so NaN/Inf at masked positions do
 * not reach μ, σ² or the outputs at selected positions. Gradients through this function are clean only when
 * masked positions hold finite values (whitening is normally applied to advantages, which carry no gradient).
 *
 * @param values float32, any shape.
 * @param mask same shape as `values`; any dtype.
 * @returns float32, the shape of `values`.
 */
export function maskedWhiten(
  values: tf.Tensor,
  mask: tf.Tensor,
  { unbiased = true, shiftMean = true, eps = 1e-8 }: MaskedWhitenOptions = {},
): tf.Tensor {
  checkTensor(values, 'values', FN);
  checkTensor(mask, 'mask', FN, { dtype: 'any' });
  checkSameShape(values, mask, 'values', 'mask', FN);
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new Error(`${FN}: \`eps\` must be a finite number >= 0, got ${String(eps)}.`);
  }
  return tf.tidy(() => {
    const { mean, variance } = maskedMeanVar(values, mask, unbiased);
    const whitened = tf.mul(tf.sub(values, mean), tf.rsqrt(tf.add(variance, eps)));
    return shiftMean ? whitened : tf.add(whitened, mean);
  });
}
