/**
 * `_FusedMatMul` for the wasm backend: the stock kernel has the same slow paths as BatchMatMul
 * (transposes and batches run a naive loop). Here the product runs on relign's GEMM; a row bias
 * ([N]) is written into the output before the product accumulates onto it (no extra pass), other
 * biases and the activation are applied with the backend's own elementwise kernels (which broadcast
 * the bias as the op allows, where the stock kernel takes only a rank-1 bias).
 */
import {
  getKernel,
  type DataId,
  type KernelFunc,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { fastMatMul, isRowBias } from './batch-mat-mul.js';
import type { WasmBackendLike } from './state.js';

interface FusedArgs {
  inputs: { a?: TensorInfo; b?: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
  backend: WasmBackendLike;
  attrs: { transposeA?: boolean; transposeB?: boolean; activation?: string; leakyreluAlpha?: number };
}

let stockFusedMatMul: KernelFunc | undefined;

export function setStockFusedMatMul(fn: KernelFunc | undefined): void {
  stockFusedMatMul = fn;
}

function runKernel(
  name: string,
  backend: WasmBackendLike,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const config = getKernel(name, 'wasm');
  if (!config) throw new Error(`_FusedMatMul: the wasm backend has no '${name}' kernel`);
  return config.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

export function fusedMatMul(args: FusedArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b, bias, preluActivationWeights } = inputs;
  const activation = attrs.activation ?? 'linear';
  const stock = () => {
    if (!stockFusedMatMul) throw new Error('_FusedMatMul: the stock wasm kernel is not available');
    return stockFusedMatMul(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  };
  if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32') return stock();
  const known = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'];
  if (!known.includes(activation)) return stock();

  // A row bias (the usual [N]) pre-fills the output and the product accumulates onto it; any other
  // broadcastable bias is added afterwards.
  const n = attrs.transposeB ? b.shape[b.shape.length - 2]! : b.shape[b.shape.length - 1]!;
  const rowBias = bias !== undefined && isRowBias(bias, n) ? bias : undefined;
  let out = fastMatMul(backend, a, b, !!attrs.transposeA, !!attrs.transposeB, rowBias);
  if (!out) return stock();
  const replace = (next: TensorInfo) => {
    backend.disposeData(out!.dataId as DataId);
    out = next;
  };
  if (bias && !rowBias) replace(runKernel('Add', backend, { a: out, b: bias }));
  switch (activation) {
    case 'relu':
      replace(runKernel('Relu', backend, { x: out }));
      break;
    case 'relu6':
      replace(runKernel('Relu6', backend, { x: out }));
      break;
    case 'elu':
      replace(runKernel('Elu', backend, { x: out }));
      break;
    case 'sigmoid':
      replace(runKernel('Sigmoid', backend, { x: out }));
      break;
    case 'leakyrelu':
      replace(runKernel('LeakyRelu', backend, { x: out }, { alpha: attrs.leakyreluAlpha ?? 0.2 }));
      break;
    case 'prelu':
      if (!preluActivationWeights)
        throw new Error("_FusedMatMul: activation 'prelu' needs preluActivationWeights");
      replace(runKernel('Prelu', backend, { x: out, alpha: preluActivationWeights }));
      break;
    default:
      break;
  }
  return out;
}
