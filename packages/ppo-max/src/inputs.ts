/**
 * Input checks and masking shared by the pure per-token PPO functions (rewards, GAE, whitening, losses). The
 * checks are @relign/tensor's (`checkTensor`, `checkObject`, ...): every error names the function, the
 * argument and the fix.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, checkObject, checkOptions, checkPositive, checkTensor } from '@relign/tensor';

/**
 * The `[B, T]` tensors `fields` of an input record: live, rank 2, all of the first one's shape, float32 except
 * `mask` (bool, int32 or float32). Returned by name.
 */
export function checkTokenInputs<K extends string>(
  input: unknown,
  fields: readonly K[],
  fn: string,
): Record<K, tf.Tensor> {
  const rec = checkObject(input, 'input', fn, fields);
  const out = {} as Record<K, tf.Tensor>;
  let shape: readonly number[] | undefined;
  for (const field of fields) {
    out[field] = checkTensor(rec[field], field, fn, {
      rank: 2,
      layout: '[B, T]',
      ...(shape ? { shape } : {}),
      ...(field === 'mask' ? { dtype: 'any' as const } : {}),
    });
    shape ??= out[field].shape;
  }
  return out;
}

/** `mask != 0` as bool (a bool mask is used as is). */
export function maskBool(mask: tf.Tensor): tf.Tensor {
  return mask.dtype === 'bool' ? mask : tf.notEqual(mask, tf.scalar(0, mask.dtype));
}

/** `values` where `cond`, else 0: a select, so NaN/Inf at masked positions never reach a sum or a gradient. */
export function select(cond: tf.Tensor, values: tf.Tensor): tf.Tensor {
  return tf.where(cond, values, tf.zerosLike(values));
}

/**
 * The options of the clipped losses: `clipRange` ε > 0 (`Infinity` = no clipping) and the optional token count
 * `n` > 0 of the token mean.
 */
export function checkClipOptions(
  options: unknown,
  fn: string,
): { eps: number; tokenCount: number | undefined } {
  const o = checkOptions(options, ['clipRange', 'tokenCount'], fn);
  return {
    eps: checkNumber(o.clipRange, 'options.clipRange', fn, (x) => x > 0, '> 0 (Infinity = no clipping)'),
    tokenCount:
      o.tokenCount === undefined ? undefined : checkPositive(o.tokenCount, 'options.tokenCount', fn),
  };
}

/**
 * `x ↦ Σ_t x_t / n` over the positions where `cond` holds (the token mean of docs/algorithms.md §4.6), with
 * `n = tokenCount`, by default the number of such positions (at least 1). Call inside a `tf.tidy`.
 */
export function tokenMean(cond: tf.Tensor, tokenCount: number | undefined): (x: tf.Tensor) => tf.Scalar {
  const n = tokenCount ?? tf.maximum(tf.sum(tf.cast(cond, 'float32')), 1);
  return (x) => tf.div(tf.sum(select(cond, x)), n) as tf.Scalar;
}
