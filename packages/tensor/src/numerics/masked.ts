/**
 * Statistics over the positions where a mask is non-zero (docs/algorithms.md §0 `masked_mean`, §4.5; test vector T1).
 *
 * NaN safety: values at masked-out positions may be anything, NaN and ±Inf included (padding, invalid
 * log-probs). They are removed with a select, `tf.where(mask, values, 0)`, never by multiplying with the
 * mask (`NaN · 0 = NaN`), and every statistic is computed from the selected tensor, so neither the result
 * nor its gradient w.r.t. `values` is touched by what sits at masked positions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkSameShape, checkTensor } from '../validate.js';

/** `mask != 0` as a bool tensor (a bool mask is used as is). */
export function maskToBool(mask: tf.Tensor): tf.Tensor {
  return mask.dtype === 'bool' ? mask : tf.notEqual(mask, tf.scalar(0, mask.dtype));
}

function check(values: tf.Tensor, mask: tf.Tensor, fn: string): void {
  checkTensor(values, 'values', fn);
  checkTensor(mask, 'mask', fn, { dtype: 'any' });
  checkSameShape(values, mask, 'values', 'mask', fn);
}

/** `values` with masked-out positions replaced by 0 (a select, so NaN/Inf there disappear). */
export function selectMasked(values: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.where(maskToBool(mask), values, tf.zerosLike(values)));
}

/** Number of selected positions (float32), reduced over `axis` (all axes when omitted). */
function maskCount(mask: tf.Tensor, axis?: number | number[]): tf.Tensor {
  return tf.sum(tf.cast(maskToBool(mask), 'float32'), axis);
}

/**
 * `Σ values` over positions where `mask != 0`.
 *
 * @param values float32, any shape.
 * @param mask same shape as `values`; any dtype (bool, 0/1 int32 or float32).
 * @param axis axes to reduce (all when omitted, giving a scalar). Reduced axes are dropped.
 */
export function maskedSum(values: tf.Tensor, mask: tf.Tensor, axis?: number | number[]): tf.Tensor {
  check(values, mask, 'maskedSum');
  return tf.tidy(() => tf.sum(selectMasked(values, mask), axis));
}

/**
 * Mean of `values` over positions where `mask != 0`: `Σ select(mask, values) / max(Σ mask, 1)` (docs/algorithms.md §6).
 *
 * With `axis`, one mean per remaining index (e.g. `axis = 1` on `[B, T]` gives per-row means `[B]`).
 * An empty selection (a row with no selected position, or an all-zero mask) gives **0**, not NaN, so a
 * fully padded row cannot poison a batch mean; callers that must exclude such rows count them separately.
 *
 * @param values float32, any shape.
 * @param mask same shape as `values`; any dtype.
 * @param axis axes to reduce (all when omitted, giving a scalar).
 */
export function maskedMean(values: tf.Tensor, mask: tf.Tensor, axis?: number | number[]): tf.Tensor {
  check(values, mask, 'maskedMean');
  return tf.tidy(() =>
    tf.div(tf.sum(selectMasked(values, mask), axis), tf.maximum(maskCount(mask, axis), 1)),
  );
}

export interface MaskedVarOptions {
  /**
   * Bessel's correction, `× N/(N − 1)` with N the number of selected positions (TRL's default, docs/algorithms.md §0).
   * `false`: biased variance (OpenRLHF, MOSS). Default true.
   */
  unbiased?: boolean;
}

/**
 * Variance of `values` over all positions where `mask != 0` (a scalar). The mean is the masked mean; the
 * squared deviations are averaged over the selected positions only (docs/algorithms.md §0, T1: x = [1,2,3,4],
 * mask = [0,1,1,0] gives 0.5).
 *
 * With fewer than two selected positions the unbiased correction is undefined (TRL divides by zero and gets
 * NaN or raises); here it is computed as `N / max(N − 1, 1)`, so one selected value gives 0 and an empty
 * mask gives 0. This keeps the function free of host reads (no data sync).
 *
 * @param values float32, any shape.
 * @param mask same shape as `values`; any dtype.
 */
export function maskedVar(
  values: tf.Tensor,
  mask: tf.Tensor,
  { unbiased = true }: MaskedVarOptions = {},
): tf.Scalar {
  check(values, mask, 'maskedVar');
  return tf.tidy(() => maskedVarUnchecked(values, mask, unbiased));
}

/** Masked mean and variance (scalars) without re-validating; shared with maskedWhiten. */
export function maskedMeanVar(
  values: tf.Tensor,
  mask: tf.Tensor,
  unbiased: boolean,
): { mean: tf.Scalar; variance: tf.Scalar } {
  const cond = maskToBool(mask);
  const safe = tf.where(cond, values, tf.zerosLike(values));
  const count = tf.sum(tf.cast(cond, 'float32'));
  const mean = tf.div(tf.sum(safe), tf.maximum(count, 1)) as tf.Scalar;
  const centered = tf.where(cond, tf.sub(safe, mean), tf.zerosLike(values));
  let variance = tf.div(tf.sum(tf.square(centered)), tf.maximum(count, 1));
  if (unbiased) variance = tf.mul(variance, tf.div(count, tf.maximum(tf.sub(count, 1), 1)));
  return { mean, variance: variance as tf.Scalar };
}

function maskedVarUnchecked(values: tf.Tensor, mask: tf.Tensor, unbiased: boolean): tf.Scalar {
  return maskedMeanVar(values, mask, unbiased).variance;
}
