/**
 * `Slice` and `SplitV` for the wasm backend: copy only the selected region, as memory.copy runs.
 * The stock Slice first copies the WHOLE input out of the wasm heap into JS (`readSync`), then the
 * region back: slicing one row of a [50257, 768] table, or one position of [B, T, V] logits, costs a
 * copy of everything. The stock SplitV calls that Slice once per part.
 */
import {
  backend_util,
  slice_util,
  util,
  type DataId,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { elementBytes } from './concat.js';
import { kernelState, offsetOf, type KernelState, type WasmBackendLike } from './state.js';

interface SliceArgs {
  inputs: { x?: TensorInfo };
  backend: WasmBackendLike;
  attrs: { begin?: number | number[]; size?: number | number[] };
}

interface SplitArgs {
  inputs: { x?: TensorInfo };
  backend: WasmBackendLike;
  attrs: { numOrSizeSplits?: number | number[]; axis?: number | number[] };
}

let stockSlice: KernelFunc | undefined;
let stockSplitV: KernelFunc | undefined;

export function setStockSlice(fn: KernelFunc | undefined): void {
  stockSlice = fn;
}
export function setStockSplitV(fn: KernelFunc | undefined): void {
  stockSplitV = fn;
}

/**
 * Copies x[begin : begin + size] (already validated) into a fresh output. The trailing dims that are
 * taken whole, with the last partial one, form one contiguous run per index of the dims before it;
 * the innermost of those outer dims is one `copy2d` call, the rest an odometer in JS.
 */
function copyRegion(
  backend: WasmBackendLike,
  state: KernelState,
  x: TensorInfo,
  begin: number[],
  size: number[],
  bytes: number,
): TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const total = util.sizeFromShape(size);
  if (total === 0) return out;
  const shape = x.shape;
  const rank = shape.length;
  const strides = [...util.computeStrides(shape), 1].map((s) => s * bytes); // bytes per step of each dim
  // d: the dim where the contiguous run starts (dims after it are whole).
  let d = Math.max(rank - 1, 0);
  while (d > 0 && size[d] === shape[d]) d--;
  const run = util.sizeFromShape(size.slice(d)) * bytes;
  const xPtr = offsetOf(backend, x.dataId as DataId);
  let dst = offsetOf(backend, out.dataId as DataId);
  let src = xPtr;
  for (let i = 0; i < rank; i++) src += begin[i]! * strides[i]!;
  if (d === 0) {
    state.k.copy2d(dst, 0, src, 0, 1, run);
    return out;
  }
  // Dim d-1 is the copy2d rows; dims 0..d-2 are iterated here.
  const rows = size[d - 1]!;
  const rowStride = strides[d - 1]!;
  const outer = size.slice(0, d - 1);
  const idx = new Array<number>(outer.length).fill(0);
  const count = util.sizeFromShape(outer);
  for (let o = 0; o < count; o++) {
    let s = src;
    for (let i = 0; i < outer.length; i++) s += idx[i]! * strides[i]!;
    state.k.copy2d(dst, run, s, rowStride, rows, run);
    dst += rows * run;
    for (let i = outer.length - 1; i >= 0; i--) {
      if (++idx[i]! < outer[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}

export function slice(args: SliceArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  const bytes = elementBytes(x.dtype);
  const state = bytes === null ? null : kernelState(backend);
  if (bytes === null || !state) {
    if (!stockSlice) throw new Error('Slice: the stock wasm kernel is not available');
    return stockSlice(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  }
  const [begin, size] = slice_util.parseSliceParams(x, attrs.begin ?? 0, attrs.size);
  slice_util.assertParamsValid(x, begin!, size!);
  return copyRegion(backend, state, x, begin!, size!, bytes);
}

export function splitV(args: SplitArgs): TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  const bytes = elementBytes(x.dtype);
  const state = bytes === null ? null : kernelState(backend);
  if (bytes === null || !state) {
    if (!stockSplitV) throw new Error('SplitV: the stock wasm kernel is not available');
    return stockSplitV(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo[];
  }
  const axis = util.parseAxisParam((attrs.axis ?? 0) as number, x.shape)[0]!;
  const sizes = backend_util.prepareSplitSize(x, attrs.numOrSizeSplits ?? 1, axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const part = copyRegion(backend, state, x, [...begin], size, bytes);
    begin[axis]! += s;
    return part;
  });
}
