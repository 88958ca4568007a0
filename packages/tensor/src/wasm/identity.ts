/**
 * Zero-copy `Identity`, and `Transpose` when the permutation leaves the memory order unchanged.
 *
 * While a gradient is being recorded, tfjs clones (kernel `Identity`) every tensor an op saves for
 * its backward pass; the stock wasm Identity copies the data, so a training step copies every saved
 * activation and weight once more (a 50257 x 128 embedding table: 26 MB, ~3 ms). Tensors are
 * immutable, so, like the cpu backend, these kernels return the input's data with its reference
 * count raised. The same holds for transposes that only move size-1 dimensions or none (tfjs's
 * gather gradient issues such a transpose on the full gradient of the table).
 */
import { type DataId, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './state.js';

type Backend = WasmBackendLike & { incRef(dataId: DataId): void };

let stockIdentity: KernelFunc | undefined;
let stockTranspose: KernelFunc | undefined;

export function setStockIdentity(fn: KernelFunc | undefined): void {
  stockIdentity = fn;
}
export function setStockTranspose(fn: KernelFunc | undefined): void {
  stockTranspose = fn;
}

function share(backend: Backend, x: TensorInfo, shape: number[]): TensorInfo {
  backend.incRef(x.dataId as DataId);
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

export function identity(args: { inputs: { x?: TensorInfo }; backend: Backend }): TensorInfo {
  const x = args.inputs.x!;
  if (x.dtype === 'string' || typeof args.backend.incRef !== 'function') {
    if (!stockIdentity) throw new Error('Identity: the stock wasm kernel is not available');
    return stockIdentity(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  }
  return share(args.backend, x, [...x.shape]);
}

/** Whether transposing `shape` by `perm` keeps the elements in the same memory order. */
export function isMemoryOrderPreserving(shape: number[], perm: number[]): boolean {
  let last = -1;
  for (const axis of perm) {
    if (shape[axis] === 1) continue;
    if (axis < last) return false;
    last = axis;
  }
  return true;
}

export function transpose(args: {
  inputs: { x?: TensorInfo };
  backend: Backend;
  attrs: { perm?: number[] };
}): TensorInfo {
  const x = args.inputs.x!;
  const perm = args.attrs.perm ?? [];
  const valid =
    perm.length === x.shape.length &&
    perm.every((p, i) => perm.indexOf(p) === i && p >= 0 && p < perm.length);
  if (
    x.dtype !== 'string' &&
    valid &&
    typeof args.backend.incRef === 'function' &&
    isMemoryOrderPreserving(x.shape, perm)
  ) {
    return share(
      args.backend,
      x,
      perm.map((p) => x.shape[p]!),
    );
  }
  if (!stockTranspose) throw new Error('Transpose: the stock wasm kernel is not available');
  return stockTranspose(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
}
