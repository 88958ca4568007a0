/**
 * RMSNorm (Llama, Qwen2, Qwen3): `x / sqrt(mean(x^2) + eps) * weight`, over the last axis, without
 * centering or bias (HF `LlamaRMSNorm`; in float32 its upcast is a no-op). Run inside `tf.tidy`.
 *
 * @param x [N, D]; @param weight [D]. @returns [N, D].
 */
import * as tf from '@tensorflow/tfjs-core';

export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), weight) as tf.Tensor2D;
}
