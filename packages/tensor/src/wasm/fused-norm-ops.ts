/**
 * `fusedRmsNorm` and `fusedSwiglu` (Llama/Qwen blocks) and the fused backward kernels of every fused
 * norm and activation: on the wasm backend one kernel each way (see `fused-norm-kernels.ts`), where the
 * unfused forms are chains of 5-15 small kernels whose dispatch dominates at decode and tiny-model
 * sizes; on every other backend (and for non-float32 input) the same math as plain tfjs ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { kernelState, offsetOf, type KernelState, type WasmBackendLike } from './state.js';

export const RMS_NORM_KERNEL = 'RelignRmsNorm';
export const RMS_NORM_GRAD_KERNEL = 'RelignRmsNormGrad';
export const SWIGLU_KERNEL = 'RelignSwiglu';
export const SWIGLU_GRAD_KERNEL = 'RelignSwigluGrad';
export const LAYER_NORM_GRAD_KERNEL = 'RelignLayerNormGrad';
export const GELU_GRAD_KERNEL = 'RelignGeluGrad';

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: WasmBackendLike;
  attrs?: { eps?: number };
}

function setup(
  name: string,
  backend: WasmBackendLike,
): { state: KernelState; ptr: (t: TensorInfo) => number } {
  const state = kernelState(backend);
  if (!state) throw new Error(`${name}: relign wasm kernels are unavailable on this backend`);
  return { state, ptr: (t) => offsetOf(backend, t.dataId as DataId) };
}

/** Rows and width of x [..., D]. */
function rowsOf(x: TensorInfo): [number, number] {
  const d = x.shape[x.shape.length - 1] ?? 0;
  return [d === 0 ? 0 : tf.util.sizeFromShape(x.shape) / d, d];
}

/** The wasm `RelignRmsNorm` kernel (x [..., D], gamma [D]). */
export function rmsNormKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, gamma } = inputs as { x: TensorInfo; gamma: TensorInfo };
  const { state, ptr } = setup(RMS_NORM_KERNEL, backend);
  const [rows, d] = rowsOf(x);
  const out = backend.makeOutput(x.shape, 'float32');
  if (rows > 0) state.k.rms_norm(ptr(out), ptr(x), ptr(gamma), rows, d, attrs?.eps ?? 1e-6);
  return out;
}

/** The wasm `RelignRmsNormGrad` kernel (dy, x [..., D], gamma [D]) -> [dx, dgamma]. */
export function rmsNormGradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { dy, x, gamma } = inputs as { dy: TensorInfo; x: TensorInfo; gamma: TensorInfo };
  const { state, ptr } = setup(RMS_NORM_GRAD_KERNEL, backend);
  const [rows, d] = rowsOf(x);
  const dx = backend.makeOutput(x.shape, 'float32');
  const dg = backend.makeOutput(gamma.shape, 'float32');
  state.k.rms_norm_grad(ptr(dx), ptr(dg), ptr(dy), ptr(x), ptr(gamma), rows, d, attrs?.eps ?? 1e-6);
  return [dx, dg];
}

/** The wasm `RelignLayerNormGrad` kernel (dy, x [..., D], gamma [D]) -> [dx, dgamma, dbeta]. */
export function layerNormGradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { dy, x, gamma } = inputs as { dy: TensorInfo; x: TensorInfo; gamma: TensorInfo };
  const { state, ptr } = setup(LAYER_NORM_GRAD_KERNEL, backend);
  const [rows, d] = rowsOf(x);
  const dx = backend.makeOutput(x.shape, 'float32');
  const dg = backend.makeOutput(gamma.shape, 'float32');
  const db = backend.makeOutput(gamma.shape, 'float32');
  const eps = attrs?.eps ?? 1e-5;
  state.k.layer_norm_grad(ptr(dx), ptr(dg), ptr(db), ptr(dy), ptr(x), ptr(gamma), rows, d, eps);
  return [dx, dg, db];
}

/** The wasm `RelignSwiglu` kernel: gate * sigmoid(gate) * up (same shapes). */
export function swigluKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const { gate, up } = inputs as { gate: TensorInfo; up: TensorInfo };
  const { state, ptr } = setup(SWIGLU_KERNEL, backend);
  const out = backend.makeOutput(gate.shape, 'float32');
  state.k.swiglu(ptr(out), ptr(gate), ptr(up), tf.util.sizeFromShape(gate.shape));
  return out;
}

/** The wasm `RelignSwigluGrad` kernel (dy, gate, up) -> [dgate, dup]. */
export function swigluGradKernel({ inputs, backend }: KernelArgs): TensorInfo[] {
  const { dy, gate, up } = inputs as { dy: TensorInfo; gate: TensorInfo; up: TensorInfo };
  const { state, ptr } = setup(SWIGLU_GRAD_KERNEL, backend);
  const dgate = backend.makeOutput(gate.shape, 'float32');
  const dup = backend.makeOutput(gate.shape, 'float32');
  state.k.swiglu_grad(ptr(dgate), ptr(dup), ptr(dy), ptr(gate), ptr(up), tf.util.sizeFromShape(gate.shape));
  return [dgate, dup];
}

/** The wasm `RelignGeluGrad` kernel (dy, x) -> dx. */
export function geluGradKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const { state, ptr } = setup(GELU_GRAD_KERNEL, backend);
  const dx = backend.makeOutput(x.shape, 'float32');
  state.k.gelu_grad(ptr(dx), ptr(x), ptr(dy), tf.util.sizeFromShape(x.shape));
  return dx;
}

/** Whether `kernel` runs fused on the active backend for these inputs. */
export function runsFused(kernel: string, ...inputs: tf.Tensor[]): boolean {
  if (inputs.some((t) => t.dtype !== 'float32') || tf.getBackend() !== 'wasm') return false;
  if (!tf.getKernel(kernel, 'wasm')) return false;
  return kernelState(tf.backend() as unknown as WasmBackendLike) !== null;
}

/** The unfused RMSNorm, exactly as @relign/lm computed it before this kernel existed. */
function rmsNormUnfused(x: tf.Tensor, gamma: tf.Tensor, eps: number): tf.Tensor {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), gamma);
}

/**
 * RMSNorm over the last axis (Llama, Qwen): `x / sqrt(mean(x^2) + eps) * gamma`; one kernel each way
 * on wasm, five ops forward elsewhere.
 *
 * @param x [..., D]; @param gamma [D].
 */
export function fusedRmsNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, eps = 1e-6): T {
  const d = x.shape[x.shape.length - 1];
  if (d === undefined || gamma.size !== d) {
    throw new Error(
      `fusedRmsNorm: gamma must have one value per feature (the last axis of x, ${d ?? 'none'}); ` +
        `got x ${JSON.stringify(x.shape)}, gamma ${JSON.stringify(gamma.shape)}`,
    );
  }
  if (!runsFused(RMS_NORM_KERNEL, x, gamma)) return tf.tidy(() => rmsNormUnfused(x, gamma, eps)) as T;
  return tf.engine().runKernel(RMS_NORM_KERNEL, { x, gamma }, { eps }) as T;
}

/**
 * The SwiGLU gate of Llama-style MLPs, `silu(gate) * up = gate * sigmoid(gate) * up`; one kernel each
 * way on wasm, three ops forward elsewhere. `gate` and `up` must have the same shape.
 */
export function fusedSwiglu<T extends tf.Tensor>(gate: T, up: tf.Tensor): T {
  if (!tf.util.arraysEqual(gate.shape, up.shape)) {
    throw new Error(
      `fusedSwiglu: gate and up must have the same shape (the gate_proj and up_proj outputs); ` +
        `got ${JSON.stringify(gate.shape)} and ${JSON.stringify(up.shape)}`,
    );
  }
  if (!runsFused(SWIGLU_KERNEL, gate, up))
    return tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up)) as T;
  return tf.engine().runKernel(SWIGLU_KERNEL, { gate, up }) as T;
}

/**
 * The LayerNorm gradients [dx, dgamma, dbeta] in one wasm kernel, or null where it does not run (the
 * caller then uses tfjs ops). For `fused-ops.ts`'s `RelignLayerNorm` gradient.
 */
export function fusedLayerNormGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  gamma: tf.Tensor,
  eps: number,
): tf.Tensor[] | null {
  if (!runsFused(LAYER_NORM_GRAD_KERNEL, dy, x, gamma)) return null;
  return tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, { dy, x, gamma }, { eps }) as tf.Tensor[];
}

/** The GELU gradient in one wasm kernel, or null where it does not run. */
export function fusedGeluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor | null {
  if (!runsFused(GELU_GRAD_KERNEL, dy, x)) return null;
  return tf.engine().runKernel(GELU_GRAD_KERNEL, { dy, x }) as tf.Tensor;
}

function registerGradients(): void {
  if (!tf.getGradient(RMS_NORM_KERNEL)) {
    tf.registerGradient({
      kernelName: RMS_NORM_KERNEL,
      inputsToSave: ['x', 'gamma'],
      gradFunc: (dy, saved, attrs) => {
        const [x, gamma] = saved as [tf.Tensor, tf.Tensor];
        const g = dy as tf.Tensor;
        const eps = (attrs as { eps?: number }).eps ?? 1e-6;
        // Both gradients come from one kernel, run once here (not per input).
        if (runsFused(RMS_NORM_GRAD_KERNEL, g, x, gamma)) {
          const [dx, dg] = tf
            .engine()
            .runKernel(RMS_NORM_GRAD_KERNEL, { dy: g, x, gamma }, { eps }) as tf.Tensor[];
          return { x: () => dx!, gamma: () => dg! };
        }
        const d = x.shape[x.shape.length - 1]!;
        const rstd = () => tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps));
        return {
          x: () => {
            const r = rstd();
            const gg = tf.mul(g, gamma);
            const c = tf.mul(tf.pow(r, 3), tf.mean(tf.mul(gg, x), -1, true));
            return tf.sub(tf.mul(gg, r), tf.mul(x, c));
          },
          gamma: () => tf.reshape(tf.sum(tf.reshape(tf.mul(g, tf.mul(x, rstd())), [-1, d]), 0), gamma.shape),
        };
      },
    });
  }
  if (!tf.getGradient(SWIGLU_KERNEL)) {
    tf.registerGradient({
      kernelName: SWIGLU_KERNEL,
      inputsToSave: ['gate', 'up'],
      gradFunc: (dy, saved) => {
        const [gate, up] = saved as [tf.Tensor, tf.Tensor];
        const g = dy as tf.Tensor;
        if (runsFused(SWIGLU_GRAD_KERNEL, g, gate, up)) {
          const [dgate, dup] = tf.engine().runKernel(SWIGLU_GRAD_KERNEL, { dy: g, gate, up }) as tf.Tensor[];
          return { gate: () => dgate!, up: () => dup! };
        }
        return {
          gate: () => {
            const s = tf.sigmoid(gate);
            return tf.mul(tf.mul(g, tf.mul(up, s)), tf.add(1, tf.mul(gate, tf.sub(1, s))));
          },
          up: () => tf.mul(g, tf.mul(gate, tf.sigmoid(gate))),
        };
      },
    });
  }
}

registerGradients();
