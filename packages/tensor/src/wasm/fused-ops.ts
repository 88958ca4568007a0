/**
 * Fused ops: one kernel on the wasm backend (see `fused-kernels.ts`) where the unfused form is a chain of
 * 6-8 small kernels whose dispatch dominates at decode sizes; on every other backend (and for non-float32
 * input) the same math as separate tfjs ops. Their gradients are registered beside the kernels, written
 * with ordinary tfjs ops (the backward pass runs once per training step, not per decoded token).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { GELU_2C, GELU_2C3 } from './fused-kernels.js';
import type { KernelExports } from './kernel-module.js';
import { kernelState, offsetOf, type WasmBackendLike } from './state.js';
import { fusedGeluGrad, fusedLayerNormGrad } from './fused-norm-ops.js';

export const GELU_KERNEL = 'RelignGelu';
export const LAYER_NORM_KERNEL = 'RelignLayerNorm';
export const TOKEN_LOGPROB_KERNEL = 'RelignTokenLogprob';

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: WasmBackendLike;
  attrs?: { eps?: number; invTau?: number };
}

/** The wasm `RelignGelu` kernel. */
export function geluKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const x = inputs['x']!;
  const state = kernelState(backend);
  if (!state) throw new Error('RelignGelu: relign wasm kernels are unavailable on this backend');
  const out = backend.makeOutput(x.shape, 'float32');
  const n = tf.util.sizeFromShape(x.shape);
  const [o, i] = [out, x].map((t) => offsetOf(backend, t.dataId as DataId)) as [number, number];
  geluAt(state.k, () => backend.wasm.HEAPF32, state.tile, o, i, n);
  return out;
}

/**
 * GELU of `n` floats at byte offset `xPtr` into `oPtr` (may be `xPtr`) with the kernels `k` on the memory
 * whose floats `heap()` views: the kernel, then the 1-3 left through the 16 bytes at `tile`.
 */
export function geluAt(
  k: KernelExports,
  heap: () => Float32Array,
  tile: number,
  oPtr: number,
  xPtr: number,
  n: number,
): void {
  const n4 = n - (n % 4);
  k.gelu(oPtr, xPtr, n4);
  if (n4 < n) {
    // The last 1-3 floats through a 16-byte block (the kernel works in f32x4).
    const f = heap();
    f.copyWithin(tile >>> 2, (xPtr >>> 2) + n4, (xPtr >>> 2) + n);
    k.gelu(tile, tile, 4);
    f.copyWithin((oPtr >>> 2) + n4, tile >>> 2, (tile >>> 2) + (n - n4));
  }
}

/** The wasm `RelignLayerNorm` kernel (x [..., D], gamma [D], beta [D]). */
export function layerNormKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const state = kernelState(backend);
  if (!state) throw new Error('RelignLayerNorm: relign wasm kernels are unavailable on this backend');
  const d = x.shape[x.shape.length - 1]!;
  const rows = d === 0 ? 0 : tf.util.sizeFromShape(x.shape) / d;
  const out = backend.makeOutput(x.shape, 'float32');
  if (rows > 0) {
    const ptr = (t: TensorInfo) => offsetOf(backend, t.dataId as DataId);
    state.k.layer_norm(ptr(out), ptr(x), ptr(gamma), ptr(beta), rows, d, attrs?.eps ?? 1e-5);
  }
  return out;
}

/**
 * The wasm `RelignTokenLogprob` kernel: logits [..., V] float32, tokens [...] int32 (one per row) ->
 * log softmax(logits * invTau)[token] per row, NaN for an id outside [0, V).
 */
export function tokenLogprobKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { logits, tokens } = inputs as { logits: TensorInfo; tokens: TensorInfo };
  const state = kernelState(backend);
  if (!state) throw new Error('RelignTokenLogprob: relign wasm kernels are unavailable on this backend');
  const v = logits.shape[logits.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(tokens.shape);
  const out = backend.makeOutput(tokens.shape, 'float32');
  if (rows === 0) return out;
  const sums = backend.makeOutput([rows], 'float32');
  const ptr = (t: TensorInfo) => offsetOf(backend, t.dataId as DataId);
  const [o, s] = [ptr(out), ptr(sums)];
  state.k.token_logprob(o, s, ptr(logits), ptr(tokens), rows, v, attrs?.invTau ?? 1);
  // log(sum exp) in JS: wasm has no log instruction, and it is one call per row.
  const heap = backend.wasm.HEAPF32;
  for (let r = 0; r < rows; r++)
    heap[(o >>> 2) + r] = heap[(o >>> 2) + r]! - Math.fround(Math.log(heap[(s >>> 2) + r]!));
  backend.disposeData(sums.dataId as DataId);
  return out;
}

/**
 * `log softmax(logits * invTau)[token]` per row as one wasm kernel (float32 logits [B, T, V], int32 tokens
 * [B, T]; NaN for an id outside [0, V)), or null where that kernel is not available (then the caller uses
 * the unfused ops). No gradient: callers wrap it in their own custom gradient.
 */
export function fusedTokenLogprobs(logits: tf.Tensor, tokens: tf.Tensor, invTau: number): tf.Tensor | null {
  if (tokens.dtype !== 'int32' || !fused(TOKEN_LOGPROB_KERNEL, logits)) return null;
  return tf.engine().runKernel(TOKEN_LOGPROB_KERNEL, { logits, tokens }, { invTau }) as tf.Tensor;
}

/** Whether `kernel` runs fused on the active backend. */
function fused(kernel: string, ...inputs: tf.Tensor[]): boolean {
  if (inputs.some((t) => t.dtype !== 'float32') || tf.getBackend() !== 'wasm') return false;
  if (!tf.getKernel(kernel, 'wasm')) return false;
  return kernelState(tf.backend() as unknown as WasmBackendLike) !== null;
}

function geluUnfused(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(x, tf.add(tf.mul(tf.square(x), GELU_2C3), GELU_2C));
  return tf.mul(x, tf.sigmoid(inner));
}

/**
 * GPT-2's GELU (`gelu_new`), `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` computed as the identical
 * `x * sigmoid(x * (1.5957691 + 1.5957691 * 0.044715 * x^2))`: one kernel on wasm, six ops elsewhere.
 */
export function fusedGelu<T extends tf.Tensor>(x: T): T {
  if (!fused(GELU_KERNEL, x)) return tf.tidy(() => geluUnfused(x)) as T;
  return tf.engine().runKernel(GELU_KERNEL, { x }) as T;
}

function layerNormUnfused(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/**
 * LayerNorm over the last axis with biased variance (as torch.nn.LayerNorm):
 * `(x - mean) / sqrt(var + eps) * gamma + beta`; one kernel on wasm, eight ops elsewhere.
 *
 * @param x [..., D]; @param gamma [D]; @param beta [D].
 */
export function fusedLayerNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): T {
  const d = x.shape[x.shape.length - 1];
  if (d === undefined || gamma.size !== d || beta.size !== d) {
    throw new Error(
      `fusedLayerNorm: gamma and beta must have one value per feature (the last axis of x, ${d ?? 'none'}); ` +
        `got x ${JSON.stringify(x.shape)}, gamma ${JSON.stringify(gamma.shape)}, beta ${JSON.stringify(beta.shape)}`,
    );
  }
  if (!fused(LAYER_NORM_KERNEL, x, gamma, beta))
    return tf.tidy(() => layerNormUnfused(x, gamma, beta, eps)) as T;
  return tf.engine().runKernel(LAYER_NORM_KERNEL, { x, gamma, beta }, { eps }) as T;
}

function registerGradients(): void {
  if (!tf.getGradient(GELU_KERNEL)) {
    tf.registerGradient({
      kernelName: GELU_KERNEL,
      inputsToSave: ['x'],
      gradFunc: (dy, saved) => {
        const [x] = saved as [tf.Tensor];
        // One wasm kernel (fused-norm-kernels.ts) where it runs, else the same math as tfjs ops.
        const fusedDx = fusedGeluGrad(dy as tf.Tensor, x);
        if (fusedDx) return { x: () => fusedDx };
        // d/dx x s(u) = s + x s (1 - s) u', u = x (C + C3 x^2), u' = C + 3 C3 x^2
        return {
          x: () => {
            const x2 = tf.square(x);
            const s = tf.sigmoid(tf.mul(x, tf.add(tf.mul(x2, GELU_2C3), GELU_2C)));
            const du = tf.add(tf.mul(x2, 3 * GELU_2C3), GELU_2C);
            const ds = tf.mul(tf.mul(s, tf.sub(1, s)), tf.mul(x, du));
            return tf.mul(dy as tf.Tensor, tf.add(s, ds));
          },
        };
      },
    });
  }
  if (!tf.getGradient(LAYER_NORM_KERNEL)) {
    tf.registerGradient({
      kernelName: LAYER_NORM_KERNEL,
      inputsToSave: ['x', 'gamma'],
      gradFunc: (dy, saved, attrs) => {
        const [x, gamma] = saved as [tf.Tensor, tf.Tensor];
        const eps = (attrs as { eps?: number }).eps ?? 1e-5;
        const d = x.shape[x.shape.length - 1]!;
        const g = dy as tf.Tensor;
        // All three gradients from one wasm kernel where it runs, computed once here (not per input).
        const fusedGrads = fusedLayerNormGrad(g, x, gamma, eps);
        if (fusedGrads) {
          const [dx, dgamma, dbeta] = fusedGrads as [tf.Tensor, tf.Tensor, tf.Tensor];
          return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
        }
        // Recomputed here rather than saved: the forward kernel returns only y.
        const xhat = () => {
          const centered = tf.sub(x, tf.mean(x, -1, true));
          const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centered), -1, true), eps));
          return [tf.mul(centered, rstd), rstd] as const;
        };
        const rowsOf = (t: tf.Tensor) => tf.reshape(t, [-1, d]);
        return {
          x: () => {
            const [xh, rstd] = xhat();
            const dxh = tf.mul(g, gamma);
            const meanDxh = tf.mean(dxh, -1, true);
            const meanDxhXh = tf.mean(tf.mul(dxh, xh), -1, true);
            return tf.mul(rstd, tf.sub(tf.sub(dxh, meanDxh), tf.mul(xh, meanDxhXh)));
          },
          gamma: () => tf.reshape(tf.sum(rowsOf(tf.mul(g, xhat()[0])), 0), gamma.shape),
          beta: () => tf.reshape(tf.sum(rowsOf(g), 0), gamma.shape),
        };
      },
    });
  }
}

registerGradients();
