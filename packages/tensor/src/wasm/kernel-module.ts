/**
 * SIMD kernels for the tfjs wasm backend, assembled at run time (see `emit.ts`) into one small module
 * that imports the backend's own linear memory, so they read and write tensors in place. The matrix
 * products are emitted by `gemm-kernels.ts`, the row copies and sums by `row-kernels.ts`; this file
 * lists every entry point's ABI, and assembles and instantiates the module.
 *
 * GEMM: C[i, j] (+)= sum_p A[i, p] * B[p, j]. A is addressed through arbitrary byte strides (row
 * `a_rs`, column `a_cs`), which is how a transposed A costs nothing extra; B is read in panels of 8
 * columns, each k-row of a panel being 8 contiguous floats `b_ks` bytes after the previous one and
 * panels `b_ps` bytes apart: either B itself (row-major, N a multiple of 8: `b_ks` = row stride,
 * `b_ps` = 32) or a copy made by `pack_b` (`b_ks` = 32, `b_ps` = 32 * kc), which also takes any
 * strides (a transposed B). C is row-major with row stride `c_rs`.
 *
 * - `pack_b(kc, n, b, b_rs, b_cs, dst)`: copies the kc x n block of B into panels
 *   `dst[panel][p][0..8]`, zero-padding the last panel.
 * - `gemm(m, n, kc, a, a_rs, a_cs, bp, b_ks, b_ps, c, c_rs, accumulate, tile)`: register tiles of
 *   MR rows x 8 columns (`v128.load32_splat` of A times two f32x4 of B, MR*2 f32x4 accumulators).
 *   `accumulate` adds into C instead of overwriting it; `tile` is 32*MR bytes of scratch for the
 *   partial tiles at the bottom and right edges.
 * - `gemm_s1` .. `gemm_s5(batch, m, n, kc, a, a_rs, a_cs, a_bs, b, b_rs, b_bs, c, c_rs, c_bs,
 *   accumulate, tile)`: for products of few rows with B read in place (row-major, N a multiple of 8):
 *   `batch` products whose operands lie `*_bs` bytes apart (0: shared), each in row tiles of exactly
 *   1..5 rows (the name's digit; the caller splits M so that no tile is partial) and panel-outer order,
 *   so one 8-column panel of B stays in L1 while every row tile uses it.
 * - `gemm_nt(batch, m, n, k, a, a_rs, a_bs, b, b_rs, b_bs, c, c_rs, c_bs, accumulate)`: C = A B^T for
 *   a B stored transposed (n x k, rows `b_rs` apart, unit stride along k) and A with unit column
 *   stride: dot products of contiguous rows, 2 x 4 outputs at a time (f32x4 along k, then a
 *   horizontal sum), so a transposed B needs no packing copy.
 * - `copy2d(dst, dst_rs, src, src_rs, rows, row_bytes)`: `rows` memory.copy calls of `row_bytes`
 *   (src_rs 0 repeats one row: bias broadcast).
 * - `zero(ptr, bytes)`: memory.fill with 0.
 * - `scatter_add_f32` / `scatter_add_i32(out, x, ids, rows, tail, num_segments)`: for each row r of x
 *   (`tail` elements) whose id s = ids[r] is in [0, num_segments), out row s += x row r.
 * - `col_sum_f32` / `col_sum_i32(out, x, outer, red, inner)`: with x viewed as [outer, red, inner],
 *   out[o, j] = sum over r of x[o, r, j] (rows added in order, f32x4 / i32x4 across j).
 * - `gather(out, x, idx, batch, outer, n_idx, dim, slice_bytes)`: with x viewed as
 *   [batch, outer, dim, slice] and idx as [batch, n_idx] (in-range int32),
 *   out[b, o, i, :] = x[b, o, idx[b, i], :], one memory.copy per slice.
 * - `gelu`, `layer_norm`, `token_logprob`: fused elementwise / row kernels, described in `fused-kernels.ts`.
 * - `rms_norm`, `rms_norm_grad`, `layer_norm_grad`, `swiglu`, `swiglu_grad`, `gelu_grad`: described in
 *   `fused-norm-kernels.ts`.
 * - `adamw`, `sum_squares`: the AdamW update of every parameter in one call, described in `adamw-kernel.ts`.
 * - `masked_softmax`, `masked_softmax_grad`, `prefix_attention`: described in `attention-kernels.ts`.
 * - `add_f32`: elementwise addition (a decode block's residuals), described in `decode-block-kernels.ts`.
 */
import { assemble } from './emit.js';
import {
  gemmFn,
  gemmNtFn,
  kernel,
  MR,
  NT_TILES,
  ntTile,
  packB,
  SMALL_MR,
  smallGemmFn,
  type SmallGemm,
} from './gemm-kernels.js';
import { wasmRelaxedSimd } from './relaxed-simd.js';
import { colSum, copy2dFn, gatherFn, scatterAdd, zeroFn } from './row-kernels.js';
import { geluFn, layerNormFn, tokenLogprobFn } from './fused-kernels.js';
import { adamwFn, sumSquaresFn } from './adamw-kernel.js';
import { maskedSoftmaxFn, maskedSoftmaxGradFn, prefixAttentionFn } from './attention-kernels.js';
import {
  geluGradFn,
  layerNormGradFn,
  rmsNormFn,
  rmsNormGradFn,
  swigluFn,
  swigluGradFn,
} from './fused-norm-kernels.js';
import { addF32Fn } from './decode-block-kernels.js';

export { MR, NR, SMALL_MR, type SmallGemm } from './gemm-kernels.js';

/** The module's entry points (each described in the comment above). */

export interface KernelExports {
  pack_b(kc: number, n: number, b: number, bRs: number, bCs: number, dst: number): void;
  gemm(
    m: number,
    n: number,
    kc: number,
    a: number,
    aRs: number,
    aCs: number,
    bp: number,
    bKs: number,
    bPs: number,
    c: number,
    cRs: number,
    accumulate: number,
    tile: number,
  ): void;
  zero(ptr: number, bytes: number): void;
  gemm_s1: SmallGemm;
  gemm_s2: SmallGemm;
  gemm_s3: SmallGemm;
  gemm_s4: SmallGemm;
  gemm_s5: SmallGemm;
  gemm_nt(
    batch: number,
    m: number,
    n: number,
    k: number,
    a: number,
    aRs: number,
    aBs: number,
    b: number,
    bRs: number,
    bBs: number,
    c: number,
    cRs: number,
    cBs: number,
    accumulate: number,
  ): void;
  copy2d(dst: number, dstRs: number, src: number, srcRs: number, rows: number, rowBytes: number): void;
  scatter_add_f32(out: number, x: number, ids: number, rows: number, tail: number, numSegments: number): void;
  scatter_add_i32(out: number, x: number, ids: number, rows: number, tail: number, numSegments: number): void;
  col_sum_f32(out: number, x: number, outer: number, red: number, inner: number): void;
  col_sum_i32(out: number, x: number, outer: number, red: number, inner: number): void;
  gather(
    out: number,
    x: number,
    idx: number,
    batch: number,
    outer: number,
    nIdx: number,
    dim: number,
    sliceBytes: number,
  ): void;
  gelu(out: number, x: number, n4: number): void;
  layer_norm(out: number, x: number, gamma: number, beta: number, rows: number, d: number, eps: number): void;
  token_logprob(
    out: number,
    sums: number,
    x: number,
    tok: number,
    rows: number,
    v: number,
    invTau: number,
  ): void;
  rms_norm(out: number, x: number, gamma: number, rows: number, d: number, eps: number): void;
  rms_norm_grad(
    dx: number,
    dgamma: number,
    dy: number,
    x: number,
    gamma: number,
    rows: number,
    d: number,
    eps: number,
  ): void;
  layer_norm_grad(
    dx: number,
    dgamma: number,
    dbeta: number,
    dy: number,
    x: number,
    gamma: number,
    rows: number,
    d: number,
    eps: number,
  ): void;
  swiglu(out: number, gate: number, up: number, n: number): void;
  swiglu_grad(dgate: number, dup: number, dy: number, gate: number, up: number, n: number): void;
  gelu_grad(dx: number, x: number, dy: number, n: number): void;
  adamw(table: number, count: number, consts: number, stats: number, scale: number, write: number): void;
  sum_squares(table: number, count: number, out: number): void;
  masked_softmax(
    out: number,
    x: number,
    bias: number,
    B: number,
    H: number,
    T: number,
    n: number,
    biasBs: number,
  ): void;
  masked_softmax_grad(dx: number, dy: number, p: number, rows: number, n: number): void;
  prefix_attention(
    out: number,
    q: number,
    k: number,
    v: number,
    bias: number,
    scores: number,
    B: number,
    Hkv: number,
    R: number,
    len: number,
    cap: number,
    dh: number,
    scale: number,
    biasBs: number,
    biasRs: number,
    hasBias: number,
  ): void;
  add_f32(out: number, a: number, b: number, n: number): void;
}

/**
 * The module's bytes (`shared`: whether the memory it imports is a shared one; `relaxed`: GEMM
 * micro-kernels with `f32x4.relaxed_madd`, by default the process-wide choice of `relaxed-simd.ts`, so
 * the backend's module and the worker threads' compute the same sums).
 */
export function kernelModuleBytes(
  shared: boolean,
  mr = MR,
  relaxed = wasmRelaxedSimd(),
): Uint8Array<ArrayBuffer> {
  const fns = [
    kernel(mr, 'kernel', relaxed),
    gemmFn(0, mr),
    packB(),
    zeroFn(),
    scatterAdd('f32'),
    scatterAdd('i32'),
    colSum('f32'),
    colSum('i32'),
    gatherFn(),
  ];
  // Row-tile kernels of every height for the small-M entry points, then those entry points.
  const small = fns.length;
  for (const h of SMALL_MR) fns.push(kernel(h, `kernel${h}`, relaxed));
  SMALL_MR.forEach((h, i) => fns.push(smallGemmFn(small + i, h)));
  const nt = fns.length;
  for (const [R, C] of NT_TILES) fns.push(ntTile(R, C, relaxed));
  fns.push(gemmNtFn(nt), copy2dFn(), geluFn(), layerNormFn(), tokenLogprobFn());
  fns.push(rmsNormFn(), rmsNormGradFn(), layerNormGradFn(), swigluFn(), swigluGradFn(), geluGradFn());
  fns.push(adamwFn(), sumSquaresFn());
  fns.push(maskedSoftmaxFn(), maskedSoftmaxGradFn(), prefixAttentionFn());
  fns.push(addF32Fn());
  return assemble(fns, { shared });
}

/** Instantiates the kernels against `memory` (the tfjs wasm backend's). */
export function instantiateKernels(memory: WebAssembly.Memory, mr = MR): KernelExports {
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const module = new WebAssembly.Module(kernelModuleBytes(shared, mr));
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}
