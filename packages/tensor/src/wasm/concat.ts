/**
 * `Concat` for the wasm backend: one `copy2d` call (a memory.copy per outer row) per input. The stock
 * kernel copies each outer row of each input with a JS `subarray` + `set` pair, which costs more than
 * the copy itself for the many short rows of a KV-cache append ([B, H, T, Dh] along T: B*H rows per
 * input per layer per decoded token).
 */
import { backend_util, util, type DataId, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { kernelState, offsetOf, type WasmBackendLike } from './state.js';

interface ConcatArgs {
  inputs: TensorInfo[];
  backend: WasmBackendLike;
  attrs: { axis?: number | number[] };
}

let stockConcat: KernelFunc | undefined;

export function setStockConcat(fn: KernelFunc | undefined): void {
  stockConcat = fn;
}

/** Bytes per element of the dtypes these copy kernels move (null: leave to the stock kernel). */
export function elementBytes(dtype: string): number | null {
  if (dtype === 'float32' || dtype === 'int32') return 4;
  if (dtype === 'bool') return 1;
  return null;
}

export function concat(args: ConcatArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const stock = () => {
    if (!stockConcat) throw new Error('Concat: the stock wasm kernel is not available');
    return stockConcat(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  };
  const first = inputs[0];
  if (!first) return stock();
  const bytes = elementBytes(first.dtype);
  if (bytes === null || inputs.some((t) => t.dtype !== first.dtype)) return stock();
  const parts = inputs.filter((t) => util.sizeFromShape(t.shape) > 0);
  if (parts.length < 2) return stock(); // nothing to concatenate (the stock kernel returns a copy)
  const state = kernelState(backend);
  if (!state) return stock();
  const axis = util.parseAxisParam((attrs.axis ?? 0) as number, first.shape)[0]!;
  backend_util.assertParamsConsistent(
    inputs.map((t) => t.shape),
    axis,
  );
  const outShape = backend_util.computeOutShape(
    inputs.map((t) => t.shape),
    axis,
  );
  const out = backend.makeOutput(outShape, first.dtype);
  // Rows = the dims before `axis`; each input contributes a contiguous run of every output row.
  const rows = util.sizeFromShape(outShape.slice(0, axis));
  const rowBytes = util.sizeFromShape(outShape.slice(axis)) * bytes;
  let dst = offsetOf(backend, out.dataId as DataId);
  for (const t of parts) {
    const run = util.sizeFromShape(t.shape.slice(axis)) * bytes;
    state.k.copy2d(dst, rowBytes, offsetOf(backend, t.dataId as DataId), run, rows, run);
    dst += run;
  }
  return out;
}
