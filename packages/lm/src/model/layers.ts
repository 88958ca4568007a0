/**
 * The position-wise layers of GPT-2: LayerNorm, the tanh-form GELU and the Conv1D linear map.
 * All work on 2-D activations [N, D] (N = B*T), which keeps matmuls on the backends' fast 2-D path.
 * Callers run them inside `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * LayerNorm over the last axis with biased variance (as torch.nn.LayerNorm):
 * `(x - mean) / sqrt(var + eps) * gamma + beta`.
 *
 * @param x [N, D]; @param gamma [D]; @param beta [D]. @returns [N, D].
 */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, gamma), beta) as tf.Tensor2D;
}

/** sqrt(2/pi) * 2: `0.5 x (1 + tanh(u)) = x * sigmoid(2u)`. */
const GELU_2C = 1.5957691216057308;

/**
 * GPT-2's GELU (`gelu_new`): `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, computed as the identical
 * `x * sigmoid(1.5957691 (x + 0.044715 x*x*x))` because tanh and pow are slow on the wasm backend
 * (notes/tfjs-on-node.md).
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  const cube = tf.mul(tf.mul(x, x), x);
  const inner = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), GELU_2C);
  return tf.mul(x, tf.sigmoid(inner)) as T;
}

/**
 * HF Conv1D: `x @ w + b` with `w` stored [in, out].
 * @param x [N, in]; @param w [in, out]; @param b [out]. @returns [N, out].
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.add(tf.matMul(x, w), b) as tf.Tensor2D;
}
