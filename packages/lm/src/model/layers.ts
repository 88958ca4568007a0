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
  // Written out rather than with tf.moments, which adds a (copying, on wasm) cast and a second subtraction.
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, gamma), beta) as tf.Tensor2D;
}

/** sqrt(2/pi) * 2: `0.5 x (1 + tanh(u)) = x * sigmoid(2u)`. */
const GELU_2C = 1.5957691216057308;
/** GELU_2C * 0.044715, the cubic coefficient inside the sigmoid. */
const GELU_2C3 = GELU_2C * 0.044715;

/**
 * GPT-2's GELU (`gelu_new`): `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, computed as the identical
 * `x * sigmoid(x * (1.5957691 + 1.5957691 * 0.044715 * x^2))` because tanh and pow are slow on the wasm
 * backend (notes/tfjs-on-node.md). Six elementwise ops (square, mul, add, mul, sigmoid, mul): each op is
 * a kernel dispatch, which dominates at decode sizes.
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  const inner = tf.mul(x, tf.add(tf.mul(tf.square(x), GELU_2C3), GELU_2C));
  return tf.mul(x, tf.sigmoid(inner)) as T;
}

/** Backends whose `_FusedMatMul` kernel takes 2-D operands as they are (see {@link linear}). */
const DIRECT_FUSED_BACKENDS = new Set(['wasm', 'cpu']);

/**
 * HF Conv1D: `x @ w + b` with `w` stored [in, out], as one fused matmul-with-bias kernel.
 *
 * When no gradient is being recorded (inference, e.g. a decode step) on wasm or cpu, the kernel is run
 * directly: `tf.fused.matMul` wraps it in three reshapes to 3-D and a custom-gradient scope, ~5 µs per
 * call, which is 10 % of the kernel itself at decode sizes. Under a gradient tape (training) the op is
 * used, since only it carries the gradient.
 *
 * @param x [N, in]; @param w [in, out]; @param b [out]. @returns [N, out].
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  const engine = tf.engine();
  if (engine.state.gradientDepth === 0 && DIRECT_FUSED_BACKENDS.has(tf.getBackend())) {
    return engine.runKernel(
      '_FusedMatMul',
      { a: x, b: w, bias: b },
      { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0.2 },
    ) as tf.Tensor2D;
  }
  return tf.fused.matMul({ a: x, b: w, bias: b }) as tf.Tensor2D;
}

/**
 * The attention input projection `x @ W + b` (W [D, 3D], b [3D], HF `attn.c_attn`), returned as q, k, v
 * [N, D] each. Two equivalent schedules:
 * - decode-sized inputs (N <= D): one fused [N, D] x [D, 3D] matmul, then split the [N, 3D] activations;
 * - larger inputs: split W and b (3 D^2 values) and run three [N, D] x [D, D] matmuls, because splitting
 *   the [N, 3D] activations is a strided copy that costs about as much as the matmul itself on wasm.
 */
export function qkvProjection(
  x: tf.Tensor2D,
  w: tf.Tensor2D,
  b: tf.Tensor1D,
): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  const [N, D] = x.shape;
  if (N <= D) return tf.split(linear(x, w, b), 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const ws = tf.split(w, 3, 1) as tf.Tensor2D[];
  const bs = tf.split(b, 3, 0) as tf.Tensor1D[];
  return [0, 1, 2].map((i) => linear(x, ws[i]!, bs[i]!)) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
}
