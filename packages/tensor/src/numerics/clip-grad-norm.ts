/**
 * Gradient clipping by global norm (docs/algorithms.md §1.8, §2.9, §6: the reference trainers clip at 1.0).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkPositive, describeValue } from '../validate.js';

const FN = 'clipByGlobalNorm';

/**
 * Added to the norm in the scale `maxNorm / (norm + 1e-6)`, as torch's `clip_grad_norm_` does: it avoids a
 * division by zero for all-zero gradients and makes a gradient of norm exactly `maxNorm` come out scaled
 * by 1 − O(1e-6).
 */
export const CLIP_NORM_EPS = 1e-6;

/** Result of {@link clipByGlobalNorm}. */
export interface ClippedGrads<G> {
  /** New tensors (the caller disposes them and, separately, the inputs), same container shape as given. */
  grads: G;
  /** Global L2 norm of the gradients **before** clipping (float32 scalar; the caller disposes it). */
  norm: tf.Scalar;
}

/**
 * Scales all gradients by `min(1, maxNorm / (norm + 1e-6))`, where `norm = sqrt(Σ_i ‖g_i‖²)` over every
 * tensor (docs/algorithms.md §6).
 *
 * A non-finite global norm (a NaN or ±Inf somewhere) is returned as is and the gradients are returned
 * **unscaled** (copies), so the caller can detect it (`!isFinite(norm)`) and skip the optimizer step rather
 * than apply gradients silently zeroed or NaN-scaled. The decision is made on the device (no host read).
 *
 * @param grads a record (as from `tf.variableGrads(...).grads`) or an array of float32 tensors, any shapes.
 *   Inputs are not disposed.
 * @param maxNorm finite, > 0.
 */
export function clipByGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): ClippedGrads<Record<string, tf.Tensor>>;
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): ClippedGrads<tf.Tensor[]>;
export function clipByGlobalNorm(
  grads: Record<string, tf.Tensor> | tf.Tensor[],
  maxNorm: number,
): ClippedGrads<Record<string, tf.Tensor> | tf.Tensor[]> {
  checkPositive(maxNorm, 'maxNorm', FN);
  if (grads === null || typeof grads !== 'object') {
    throw new TypeError(
      `${FN}: \`grads\` must be an array or a record of tensors, got ${describeValue(grads)}.`,
    );
  }
  const entries: [string, tf.Tensor][] = Array.isArray(grads)
    ? grads.map((g, i) => [String(i), g])
    : Object.entries(grads);
  for (const [key, g] of entries) {
    const name = Array.isArray(grads) ? `grads[${key}]` : `grads[${JSON.stringify(key)}]`;
    if (!(g instanceof tf.Tensor))
      throw new TypeError(`${FN}: \`${name}\` must be a tf.Tensor, got ${describeValue(g)}.`);
    if (g.isDisposed) throw new Error(`${FN}: \`${name}\` has been disposed.`);
    if (g.dtype !== 'float32') throw new Error(`${FN}: \`${name}\` must be float32, got ${g.dtype}.`);
  }

  return tf.tidy(() => {
    const sumSq = entries.reduce<tf.Tensor>((acc, [, g]) => tf.add(acc, tf.sum(tf.square(g))), tf.scalar(0));
    const norm = tf.sqrt(sumSq) as tf.Scalar;
    const clipped = tf.minimum(1, tf.div(maxNorm, tf.add(norm, CLIP_NORM_EPS)));
    // isFinite(norm) false (NaN or Inf) -> scale 1: leave the gradients as they are for the caller to detect.
    const scale = tf.where(tf.isFinite(norm), clipped, tf.onesLike(clipped));
    const scaled = entries.map(([key, g]) => [key, tf.mul(g, scale)] as [string, tf.Tensor]);
    const out = Array.isArray(grads) ? scaled.map(([, g]) => g) : Object.fromEntries(scaled);
    return { grads: out, norm } as unknown as tf.TensorContainer;
  }) as unknown as ClippedGrads<Record<string, tf.Tensor> | tf.Tensor[]>;
}
