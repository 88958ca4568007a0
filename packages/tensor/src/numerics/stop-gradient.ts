/**
 * `sg(x)` of docs/algorithms.md §0: the value of `x` with a zero gradient. The pairwise losses (P3O, online
 * DPO) and DPO's logged rewards apply it to the *inputs* of their detached quantities (q, importance weights),
 * so an overflowing exp() on a detached path can never send 0·∞ = NaN into the gradient.
 */
import * as tf from '@tensorflow/tfjs-core';

const stopGradientOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  return { value: tf.clone(x), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
});

/** `sg(x)`: same values as `x`, zero gradient (docs/algorithms.md §0). Returns a new tensor. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return stopGradientOp(x) as T;
}
