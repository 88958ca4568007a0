/**
 * Position-wise layers: GPT-2's LayerNorm, tanh-form GELU and Conv1D linear map; the nn.Linear map and SiLU of
 * the Llama family (RMSNorm is in rmsnorm.ts); the adapter hook's addition ({@link withDelta}).
 * All work on 2-D activations [N, D] (N = B*T), which keeps matmuls on the backends' fast 2-D path.
 * Callers run them inside `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedGelu, fusedLayerNorm } from '@relign/tensor';
import type { ProjectionHook } from './projection-hook.js';

/**
 * LayerNorm over the last axis with biased variance (as torch.nn.LayerNorm):
 * `(x - mean) / sqrt(var + eps) * gamma + beta`. One wasm kernel (forward and backward) via @relign/tensor's
 * `fusedLayerNorm` instead of eight elementwise/reduction ops: decode steps are dispatch-bound (issue 19;
 * measured: tiny-l4 decode -20 % CPU time, training step -5 %). Equal to the op-by-op form within ~1e-6,
 * not bitwise; other backends run the op-by-op form.
 *
 * @param x [N, D]; @param gamma [D]; @param beta [D]. @returns [N, D].
 */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  return fusedLayerNorm(x, gamma, beta, eps);
}

/**
 * GPT-2's GELU (`gelu_new`): `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, computed as the identical
 * `x * sigmoid(x * (1.5957691 + 1.5957691 * 0.044715 * x^2))` because tanh and pow are slow on the wasm
 * backend (notes/tfjs-on-node.md). One wasm kernel via @relign/tensor's `fusedGelu` (six elementwise ops,
 * each a kernel dispatch, on other backends): dispatch dominates at decode sizes.
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  return fusedGelu(x);
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

/**
 * `y + hook.delta(name, x)` when a projection hook (an adapter such as LoRA, see projection-hook.ts) is
 * attached and has a delta for module `name`; `y` itself otherwise, so a model without adapters runs no
 * extra kernel.
 */
export function withDelta(
  y: tf.Tensor2D,
  hook: ProjectionHook | null,
  name: string,
  x: tf.Tensor2D,
  training: boolean,
): tf.Tensor2D {
  if (hook === null) return y;
  const delta = hook.delta(name, x, { training });
  return delta === null ? y : (tf.add(y, delta) as tf.Tensor2D);
}

/**
 * torch `nn.Linear`: `x @ w^T (+ b)` with `w` stored [out, in], as in Llama/Qwen checkpoints. Same direct
 * kernel shortcut as {@link linear} outside a gradient tape.
 *
 * @param x [N, in]; @param w [out, in]; @param b [out] or undefined. @returns [N, out].
 */
export function linearT(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  if (b === undefined) return tf.matMul(x, w, false, true);
  const engine = tf.engine();
  if (engine.state.gradientDepth === 0 && DIRECT_FUSED_BACKENDS.has(tf.getBackend())) {
    return engine.runKernel(
      '_FusedMatMul',
      { a: x, b: w, bias: b },
      { transposeA: false, transposeB: true, activation: 'linear', leakyreluAlpha: 0.2 },
    ) as tf.Tensor2D;
  }
  return tf.fused.matMul({ a: x, b: w, bias: b, transposeB: true }) as tf.Tensor2D;
}

/** SiLU (swish), `x * sigmoid(x)`: the gate activation of SwiGLU MLPs (`hidden_act: "silu"`). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x)) as T;
}
