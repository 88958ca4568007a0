/**
 * Blocked GEMM driver over the SIMD kernels of `gemm-kernels.ts`: C = A * B for 2-D products with
 * arbitrary A/B strides (transposes are free), possibly many at once (a batch of products whose
 * operands lie a fixed number of bytes apart).
 *
 * Three schedules:
 * - few rows, B^T rows contiguous (a transposed B): dot products (`gemm_nt`), no packing copy;
 * - few rows, B read in place (row-major, N a multiple of 8): `gemm_s*`, in row tiles whose heights
 *   divide M exactly (16 rows: four tiles of 4, not 5 + 5 + 5 + 1), the batch looped inside wasm;
 * - otherwise, per product: K blocks of at most KC and N blocks sized so a packed block of B stays in L2.
 */
import { NR, type SmallGemm } from './gemm-kernels.js';
import { ensureScratch, type KernelState, type WasmBackendLike } from './state.js';
import { parallelGemm } from './threads.js';

/** Depth of one K block: the A sliver (MR x KC floats) stays in L1. */
export const KC = 256;
/** Bytes of packed B per block (kc x nc floats), sized for L2. */
const PACKED_BYTES = 256 * 1024;
/**
 * Tuning knobs (tests set them to reach every code path). B is read in place (no packing) only for
 * products of at most `directMaxRows` rows: packing costs a copy of B, which few rows of A do not
 * repay (measured: M = 8, 26 vs 18 GFLOP/s; M = 1, 5.8 vs 1.9), while for many rows the contiguous
 * packed panels are a little faster (M = 1024, 34 vs 32 GFLOP/s). A transposed B is multiplied by
 * dot products (no packing) for at most `ntMaxRows` rows of A (decode-sized products: the LM head,
 * attention scores of one query).
 */
export const gemmTuning = { directMaxRows: 63, ntMaxRows: 63 };

export interface Operand {
  /** Byte offset on the heap of element (0, 0). */
  ptr: number;
  /** Bytes between consecutive rows / columns of the logical (already transposed) matrix. */
  rs: number;
  cs: number;
}

/** An operand of a batch of products: `bs` bytes from one product's matrix to the next (0: shared). */
export interface BatchedOperand extends Operand {
  bs: number;
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

function ncFor(kc: number, n: number): number {
  const nc = Math.max(NR, Math.floor(PACKED_BYTES / (4 * kc) / NR) * NR);
  return Math.min(nc, roundUp(n, NR));
}

/**
 * Splits m > 0 rows into tiles of at most 5 rows, all full: `[height, rows]` runs, at most two
 * (e.g. 16 -> [[4, 16]], 13 -> [[5, 5], [4, 8]], 64 -> [[5, 60], [4, 4]]).
 */
export function rowRuns(m: number): [number, number][] {
  let runs = rowRunsMemo[m];
  if (runs === undefined) runs = rowRunsMemo[m] = splitRows(m);
  return runs;
}

/** {@link rowRuns} by m: a decode step asks for the same few splits thousands of times. */
const rowRunsMemo: [number, number][][] = [];

function splitRows(m: number): [number, number][] {
  const tiles = Math.ceil(m / 5);
  const base = Math.floor(m / tiles);
  const extra = m % tiles;
  const runs: [number, number][] = [];
  if (extra > 0) runs.push([base + 1, extra * (base + 1)]);
  if (tiles > extra) runs.push([base, (tiles - extra) * base]);
  return runs;
}

function smallKernel(state: KernelState, height: number): SmallGemm {
  const k = state.k;
  switch (height) {
    case 1:
      return k.gemm_s1;
    case 2:
      return k.gemm_s2;
    case 3:
      return k.gemm_s3;
    case 4:
      return k.gemm_s4;
    default:
      return k.gemm_s5;
  }
}

/**
 * C (M x N, row stride cRs bytes, unit column stride) = A (M x K) * B (K x N), or C += A * B with
 * `accumulate`. Without `accumulate` every element of C is written (zeros when K is 0).
 */
export function gemm(
  backend: WasmBackendLike,
  state: KernelState,
  m: number,
  n: number,
  k: number,
  a: Operand,
  b: Operand,
  c: number,
  cRs: number,
  accumulate = false,
): void {
  const one = (o: Operand): BatchedOperand => ({ ptr: o.ptr, rs: o.rs, cs: o.cs, bs: 0 });
  gemmBatched(backend, state, 1, m, n, k, one(a), one(b), c, cRs, 0, accumulate);
}

/**
 * `batch` products C_i (+)= A_i * B_i, operand i at `ptr + i * bs` (C_i at `c + i * cBs`); see
 * {@link gemm}.
 */
export function gemmBatched(
  backend: WasmBackendLike,
  state: KernelState,
  batch: number,
  m: number,
  n: number,
  k: number,
  a: BatchedOperand,
  b: BatchedOperand,
  c: number,
  cRs: number,
  cBs: number,
  accumulate = false,
): void {
  if (batch === 0 || m === 0 || n === 0) return;
  const { k: wasm, tile } = state;
  if (k === 0) {
    if (accumulate) return;
    for (let o = 0; o < batch; o++) {
      const co = c + o * cBs;
      if (cRs === 4 * n) wasm.zero(co, 4 * m * n);
      else for (let i = 0; i < m; i++) wasm.zero(co + i * cRs, 4 * n);
    }
    return;
  }
  const acc0 = accumulate ? 1 : 0;
  // A transposed B (unit stride along K) times few rows of A: dot products, no packing.
  if (b.rs === 4 && b.cs !== 4 && a.cs === 4 && m <= gemmTuning.ntMaxRows) {
    wasm.gemm_nt(batch, m, n, k, a.ptr, a.rs, a.bs, b.ptr, b.cs, b.bs, c, cRs, cBs, acc0);
    return;
  }
  // B read in place for few rows: exact row tiles, batch looped in wasm.
  if (b.cs === 4 && n % NR === 0 && m <= gemmTuning.directMaxRows) {
    const runs = rowRuns(m);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      const acc = pc > 0 ? 1 : acc0;
      let row = 0;
      for (const [height, rows] of runs) {
        smallKernel(state, height)(
          batch,
          rows,
          n,
          kc,
          a.ptr + row * a.rs + pc * a.cs,
          a.rs,
          a.cs,
          a.bs,
          b.ptr + pc * b.rs,
          b.rs,
          b.bs,
          c + row * cRs,
          cRs,
          cBs,
          acc,
          tile,
        );
        row += rows;
      }
    }
    return;
  }
  // Packed blocks of B, one product at a time.
  const kcMax = Math.min(k, KC);
  const ncMax = ncFor(kcMax, n);
  // Large products with a contiguous C: the same schedule split over threads (identical results).
  const cContiguous = cRs === 4 * n && (batch === 1 || cBs === 4 * m * n);
  if (cContiguous) {
    const job = { batch, m, n, k, a, b, c, accumulate, kcMax: KC, ncMax };
    if (parallelGemm(() => backend.wasm.HEAPU8, job)) return;
  }
  const scratch = ensureScratch(backend, state, kcMax * roundUp(ncMax, NR) * 4);
  for (let o = 0; o < batch; o++) {
    const aPtr = a.ptr + o * a.bs;
    const bPtr = b.ptr + o * b.bs;
    const cPtr = c + o * cBs;
    for (let jc = 0; jc < n; jc += ncMax) {
      const nc = Math.min(ncMax, n - jc);
      for (let pc = 0; pc < k; pc += KC) {
        const kc = Math.min(KC, k - pc);
        const bBlock = bPtr + pc * b.rs + jc * b.cs;
        const aBlock = aPtr + pc * a.cs;
        const acc = pc > 0 ? 1 : acc0;
        wasm.pack_b(kc, nc, bBlock, b.rs, b.cs, scratch);
        wasm.gemm(m, nc, kc, aBlock, a.rs, a.cs, scratch, 32, 32 * kc, cPtr + 4 * jc, cRs, acc, tile);
      }
    }
  }
}
