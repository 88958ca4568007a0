/**
 * `BatchMatMul` (and `_FusedMatMul`) for the wasm backend on relign's SIMD GEMM.
 *
 * The stock kernel reaches XNNPACK only for `!transposeA && !transposeB && batch == 1` and runs a
 * naive loop otherwise. Here every case runs on relign's SIMD GEMM (`gemm.ts`): a transposed
 * operand is just other strides, a broadcast batch reuses the same operand (merged into the rows of
 * one product when possible, else a zero batch stride), a batch of small products is one wasm call,
 * and the output is written in place. No XNNPACK operator is created,
 * so nothing is cached by tensor id and a reused or temporary tensor can never yield stale results.
 */
import { broadcast_util, util, type DataId, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { gemm, gemmBatched, type Operand } from './gemm.js';
import { kernelState, offsetOf, type WasmBackendLike } from './state.js';

interface MatMulArgs {
  inputs: { a?: TensorInfo; b?: TensorInfo };
  backend: WasmBackendLike;
  attrs: { transposeA?: boolean; transposeB?: boolean };
}

/** Output batch index -> batch index into an operand with batch shape `dims` (broadcast to `out`). */
function batchIndexMap(dims: number[], out: number[]): Int32Array | null {
  const size = util.sizeFromShape(out);
  const own = util.sizeFromShape(dims);
  if (own === size && dims.length === out.length) return null; // identity
  const padded = new Array<number>(out.length - dims.length).fill(1).concat(dims);
  const strides = new Array<number>(out.length).fill(0);
  let s = 1;
  for (let d = out.length - 1; d >= 0; d--) {
    strides[d] = padded[d] === 1 ? 0 : s;
    s *= padded[d]!;
  }
  const map = new Int32Array(size);
  const idx = new Array<number>(out.length).fill(0);
  for (let o = 0; o < size; o++) {
    let v = 0;
    for (let d = 0; d < out.length; d++) v += idx[d]! * strides[d]!;
    map[o] = v;
    for (let d = out.length - 1; d >= 0; d--) {
      if (++idx[d]! < out[d]!) break;
      idx[d] = 0;
    }
  }
  return map;
}

/**
 * Shapes, as tfjs's BatchMatMul defines them: the last two dimensions are the matrices, the rest
 * broadcast (numpy rules).
 */
export function matMulShapes(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean) {
  const aRank = aShape.length;
  const bRank = bShape.length;
  const innerA = transposeA ? aShape[aRank - 2]! : aShape[aRank - 1]!;
  const innerB = transposeB ? bShape[bRank - 1]! : bShape[bRank - 2]!;
  const m = transposeA ? aShape[aRank - 1]! : aShape[aRank - 2]!;
  const n = transposeB ? bShape[bRank - 2]! : bShape[bRank - 1]!;
  const batchDimsA = aShape.slice(0, -2);
  const batchDimsB = bShape.slice(0, -2);
  const batchOut = broadcast_util.assertAndGetBroadcastShape(batchDimsA, batchDimsB);
  util.assert(
    innerA === innerB,
    () =>
      `Error in matMul: inner shapes (${innerA}) and (${innerB}) of Tensors with shapes ${aShape} and ` +
      `${bShape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
  );
  return { m, n, k: innerA, batchDimsA, batchDimsB, batchOut, outShape: [...batchOut, m, n] };
}

/**
 * Whether `bias` can be added by pre-filling each output row with it (a float32 vector of `n`
 * values, possibly with leading size-1 dims): then {@link fastMatMul} adds it for free.
 */
export function isRowBias(bias: TensorInfo, n: number): boolean {
  return (
    bias.dtype === 'float32' &&
    bias.shape.length >= 1 &&
    bias.shape[bias.shape.length - 1] === n &&
    util.sizeFromShape(bias.shape) === n
  );
}

/**
 * Computes a (transposed) x b (transposed) (+ `rowBias`, see {@link isRowBias}) into a fresh float32
 * output, or returns null when the SIMD kernels are unavailable on this backend (the caller then uses
 * the stock kernel).
 */
export function fastMatMul(
  backend: WasmBackendLike,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  rowBias?: TensorInfo,
): TensorInfo | null {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new Error(`matMul needs tensors of rank >= 2, got shapes ${a.shape} and ${b.shape}`);
  }
  const state = kernelState(backend);
  if (!state) return null;
  const { m, n, k, batchDimsA, batchDimsB, batchOut, outShape } = matMulShapes(
    a.shape,
    b.shape,
    transposeA,
    transposeB,
  );
  if (rowBias && !isRowBias(rowBias, n)) throw new Error('fastMatMul: the bias is not a row of N values');
  const out = backend.makeOutput(outShape, 'float32');
  const batches = util.sizeFromShape(batchOut);
  if (batches === 0 || m === 0 || n === 0) return out;

  // Offsets are read after makeOutput: allocation may grow (move) the heap views, not the offsets.
  const aPtr = offsetOf(backend, a.dataId as DataId);
  const bPtr = offsetOf(backend, b.dataId as DataId);
  const cPtr = offsetOf(backend, out.dataId as DataId);
  // The bias goes into C first, and the products accumulate onto it.
  if (rowBias) {
    state.k.copy2d(cPtr, 4 * n, offsetOf(backend, rowBias.dataId as DataId), 0, batches * m, 4 * n);
  }
  const accumulate = rowBias !== undefined;
  // Logical A is m x k, B is k x n; strides in bytes of the stored (row-major) data.
  const aRs = transposeA ? 4 : 4 * k;
  const aCs = transposeA ? 4 * m : 4;
  const bRs = transposeB ? 4 : 4 * n;
  const bCs = transposeB ? 4 * k : 4;
  const aMat = 4 * m * k;
  const bMat = 4 * k * n;
  const cMat = 4 * m * n;

  const mapA = batchIndexMap(batchDimsA, batchOut);
  const mapB = batchIndexMap(batchDimsB, batchOut);
  const batchesA = util.sizeFromShape(batchDimsA);
  const batchesB = util.sizeFromShape(batchDimsB);

  // B shared by every batch and A's batches stacked as rows: merge the batch into one product.
  if (batchesB === 1 && !transposeA && mapA === null) {
    gemm(
      backend,
      state,
      batches * m,
      n,
      k,
      { ptr: aPtr, rs: aRs, cs: aCs },
      { ptr: bPtr, rs: bRs, cs: bCs },
      cPtr,
      4 * n,
      accumulate,
    );
    return out;
  }
  // Each operand either follows the output batch or is one matrix shared by all: one batched call.
  const aBs = mapA === null ? aMat : batchesA === 1 ? 0 : -1;
  const bBs = mapB === null ? bMat : batchesB === 1 ? 0 : -1;
  if (aBs >= 0 && bBs >= 0) {
    gemmBatched(
      backend,
      state,
      batches,
      m,
      n,
      k,
      { ptr: aPtr, rs: aRs, cs: aCs, bs: aBs },
      { ptr: bPtr, rs: bRs, cs: bCs, bs: bBs },
      cPtr,
      4 * n,
      cMat,
      accumulate,
    );
    return out;
  }
  for (let o = 0; o < batches; o++) {
    const ia = mapA ? mapA[o]! : o;
    const ib = mapB ? mapB[o]! : o;
    const A: Operand = { ptr: aPtr + ia * aMat, rs: aRs, cs: aCs };
    const B: Operand = { ptr: bPtr + ib * bMat, rs: bRs, cs: bCs };
    gemm(backend, state, m, n, k, A, B, cPtr + o * cMat, 4 * n, accumulate);
  }
  return out;
}

let stockBatchMatMul: KernelFunc | undefined;

export function setStockBatchMatMul(fn: KernelFunc | undefined): void {
  stockBatchMatMul = fn;
}

/** The `BatchMatMul` kernelFunc registered on `wasm`. */
export function batchMatMul(args: MatMulArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const a = inputs.a!;
  const b = inputs.b!;
  const transposeA = !!attrs.transposeA;
  const transposeB = !!attrs.transposeB;
  if (a.dtype === 'float32' && b.dtype === 'float32') {
    const out = fastMatMul(backend, a, b, transposeA, transposeB);
    if (out) return out;
  }
  if (!stockBatchMatMul) throw new Error('BatchMatMul: the stock wasm kernel is not available');
  return stockBatchMatMul(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
}
