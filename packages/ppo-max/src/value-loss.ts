/**
 * The clipped value loss with token-mean aggregation (docs/algorithms.md §2.7, §4.6; test vector T11).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkClipOptions, checkTokenInputs, maskBool, select, tokenMean } from './inputs.js';

const FN = 'valueLoss';

export interface ValueLossInput {
  /** float32 `[B, T]`: `V`, the critic's current values. Carries the gradient. */
  values: tf.Tensor;
  /** float32 `[B, T]`: `V_old`, the values at rollout time (data). */
  oldValues: tf.Tensor;
  /** float32 `[B, T]`: `R`, the GAE returns (data). */
  returns: tf.Tensor;
  /** `[B, T]` (bool, int32 or float32): non-zero at the tokens that count. */
  mask: tf.Tensor;
}

export interface ValueLossOptions {
  /**
   * ε_v > 0: `V^c = V_old + clip(V − V_old, −ε_v, ε_v)` (0.2 in PPO-max, docs/algorithms.md §2.7). `Infinity` turns value
   * clipping off (`½(V − R)²`, MOSS without `use_critic_loss_clip`).
   */
  clipRange: number;
  /** The divisor `n` of the token mean; default `Σ mask` of this input (see `ppoPolicyLoss`). */
  tokenCount?: number;
}

export type ValueLossResult = {
  /** `½ · Σ_t m_t max((V_t − R_t)², (V^c_t − R_t)²) / n`, a float32 scalar; minimise it. Carries the gradient. */
  loss: tf.Scalar;
  /** `Σ_t m_t [(V^c_t − R_t)² > (V_t − R_t)²] / n` (MOSS `vf_clip`). */
  clipFrac: tf.Scalar;
};

/**
 * The PPO value loss (docs/algorithms.md §2.7, §4.6), per token
 *
 *     V^c_t = V_old,t + clip(V_t − V_old,t, −ε_v, ε_v),   loss_t = ½ max((V_t − R_t)², (V^c_t − R_t)²)
 *
 * token-mean aggregated: `Σ_t m_t loss_t / n` (T11: V = [1, 0, −0.5], V_old = [0.5, 0.1, −0.5], R = [2, −1, 0],
 * ε_v = 0.2 → 0.49). Where the clipped term is the max and `V` moved more than ε_v from `V_old`, the gradient
 * is 0 (PPO pessimism for the critic). Masked positions are removed with a select.
 *
 * @returns two new float32 scalars owned by the caller; the inputs are not disposed.
 * @throws Error naming the argument for a wrong type or shape, ε_v ≤ 0 or a `tokenCount` ≤ 0.
 */
export function valueLoss(input: ValueLossInput, options: ValueLossOptions): ValueLossResult {
  const fields = ['values', 'oldValues', 'returns', 'mask'] as const;
  const { values: v, oldValues: old, returns: ret, mask } = checkTokenInputs(input, fields, FN);
  const { eps, tokenCount } = checkClipOptions(options, FN);
  return tf.tidy(() => {
    const cond = maskBool(mask);
    const mean = tokenMean(cond, tokenCount);
    const vs = select(cond, v);
    const olds = select(cond, old);
    const rets = select(cond, ret);
    const unclipped = tf.square(tf.sub(vs, rets));
    let perToken = unclipped;
    let clipped: tf.Tensor | undefined;
    if (Number.isFinite(eps)) {
      const vClipped = tf.add(olds, tf.clipByValue(tf.sub(vs, olds), -eps, eps));
      clipped = tf.square(tf.sub(vClipped, rets));
      perToken = tf.maximum(unclipped, clipped);
    }
    const loss = tf.mul(mean(perToken), 0.5) as tf.Scalar;
    const clipFrac = clipped ? mean(tf.cast(tf.greater(clipped, unclipped), 'float32')) : tf.scalar(0);
    return { loss, clipFrac };
  });
}
