/**
 * `Sum` for the wasm backend when the reduced axes are one contiguous block that is not innermost
 * (e.g. axis 0 of [tokens, features]: every bias and layer-norm gradient). The stock kernel first
 * transposes the reduced axes innermost (a full copy through a slow transpose) and then sums; here
 * rows are added in place with SIMD. Other axis sets go to the stock kernel.
 */
import { backend_util, util, type DataId, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { kernelState, offsetOf, type WasmBackendLike } from './state.js';

interface SumArgs {
  inputs: { x?: TensorInfo };
  backend: WasmBackendLike;
  attrs: { axis?: number | number[]; keepDims?: boolean };
}

let stockSum: KernelFunc | undefined;

export function setStockSum(fn: KernelFunc | undefined): void {
  stockSum = fn;
}

export function sum(args: SumArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  const stock = () => {
    if (!stockSum) throw new Error('Sum: the stock wasm kernel is not available');
    return stockSum(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  };
  if (x.dtype !== 'float32' && x.dtype !== 'int32') return stock();
  const axes = util.parseAxisParam((attrs.axis ?? null) as number | number[], x.shape).sort((a, b) => a - b);
  // Drop size-1 axes (reducing them is free) and see whether the rest form one contiguous block.
  const real = axes.filter((a) => x.shape[a] !== 1);
  if (real.length === 0) return stock();
  const first = real[0]!;
  const last = real[real.length - 1]!;
  for (let a = first; a <= last; a++) {
    if (x.shape[a] !== 1 && !real.includes(a)) return stock();
  }
  const inner = util.sizeFromShape(x.shape.slice(last + 1));
  if (inner === 1) return stock(); // innermost reduction: the stock kernel needs no transpose
  const state = kernelState(backend);
  if (!state) return stock();
  const outer = util.sizeFromShape(x.shape.slice(0, first));
  const red = util.sizeFromShape(x.shape.slice(first, last + 1));

  const [outShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
  const shape = attrs.keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
  const out = backend.makeOutput(shape, x.dtype);
  if (outer * inner === 0) return out;
  const colSum = x.dtype === 'float32' ? state.k.col_sum_f32 : state.k.col_sum_i32;
  colSum(offsetOf(backend, out.dataId as DataId), offsetOf(backend, x.dataId as DataId), outer, red, inner);
  return out;
}
