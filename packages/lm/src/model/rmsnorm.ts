/**
 * RMSNorm (Llama, Qwen2, Qwen3): `x / sqrt(mean(x^2) + eps) * weight`, over the last axis, without
 * centering or bias (HF `LlamaRMSNorm`; in float32 its upcast is a no-op). One kernel forward and one
 * backward on the wasm backend (@relign/tensor's `fusedRmsNorm`: five elementwise/reduction ops per norm,
 * three norms per layer, made decode steps dispatch-bound, issue 19); the same five ops elsewhere.
 *
 * @param x [N, D]; @param weight [D]. @returns [N, D].
 */
import type * as tf from '@tensorflow/tfjs-core';
import { fusedRmsNorm } from '@relign/tensor';

export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  return fusedRmsNorm(x, weight, eps);
}
