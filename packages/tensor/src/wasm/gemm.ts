/**
 * Blocked GEMM driver over the SIMD kernels of `gemm_module.ts`: C = A * B for one 2-D product with
 * arbitrary A/B strides (transposes are free), in K blocks of at most KC and N blocks sized so a
 * packed block of B stays in L2.
 */
import { NR } from './gemm_module.js';
import { ensureScratch, type KernelState, type WasmBackendLike } from './state.js';

/** Depth of one K block: the A sliver (MR x KC floats) stays in L1. */
export const KC = 256;
/** Bytes of packed B per block (kc x nc floats), sized for L2. */
const PACKED_BYTES = 256 * 1024;
/**
 * Tuning knobs (tests set them to reach every code path). B is read in place (no packing) only for
 * products of at most `directMaxRows` rows: packing costs a copy of B, which few rows of A do not
 * repay (measured: M = 8, 26 vs 18 GFLOP/s; M = 1, 5.8 vs 1.9), while for many rows the contiguous
 * packed panels are a little faster (M = 1024, 34 vs 32 GFLOP/s).
 */
export const gemmTuning = { directMaxRows: 63 };

export interface Operand {
  /** Byte offset on the heap of element (0, 0). */
  ptr: number;
  /** Bytes between consecutive rows / columns of the logical (already transposed) matrix. */
  rs: number;
  cs: number;
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

function ncFor(kc: number, n: number): number {
  const nc = Math.max(NR, Math.floor(PACKED_BYTES / (4 * kc) / NR) * NR);
  return Math.min(nc, roundUp(n, NR));
}

/**
 * C (M x N, row stride cRs bytes, unit column stride) = A (M x K) * B (K x N). Writes every element
 * of C (zeros when K is 0).
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
): void {
  if (m === 0 || n === 0) return;
  const { k: wasm, tile } = state;
  if (k === 0) {
    if (cRs === 4 * n) wasm.zero(c, 4 * m * n);
    else for (let i = 0; i < m; i++) wasm.zero(c + i * cRs, 4 * n);
    return;
  }
  // B is read in place when its rows are contiguous, the panels whole and the rows of A few;
  // otherwise (a transposed B, N not a multiple of 8, many rows) each block is packed first.
  const direct = b.cs === 4 && n % NR === 0 && m <= gemmTuning.directMaxRows;
  const kcMax = Math.min(k, KC);
  const ncMax = ncFor(kcMax, n);
  const scratch = direct ? 0 : ensureScratch(backend, state, kcMax * roundUp(ncMax, NR) * 4);
  for (let jc = 0; jc < n; jc += ncMax) {
    const nc = Math.min(ncMax, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      const bBlock = b.ptr + pc * b.rs + jc * b.cs;
      const aBlock = a.ptr + pc * a.cs;
      const accumulate = pc > 0 ? 1 : 0;
      if (direct) {
        wasm.gemm(m, nc, kc, aBlock, a.rs, a.cs, bBlock, b.rs, 32, c + 4 * jc, cRs, accumulate, tile);
      } else {
        wasm.pack_b(kc, nc, bBlock, b.rs, b.cs, scratch);
        wasm.gemm(m, nc, kc, aBlock, a.rs, a.cs, scratch, 32, 32 * kc, c + 4 * jc, cRs, accumulate, tile);
      }
    }
  }
}
