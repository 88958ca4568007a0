/**
 * The matrix-product kernels of the module assembled in `kernel-module.ts`: `kernel` (one register
 * tile), `gemm`, `pack_b`, `gemm_s1` .. `gemm_s5` and `gemm_nt` (their ABI is described there).
 */
import { F32, Fn, I32, V128 } from './emit.js';
import { RELAXED_MADD } from './relaxed-simd.js';

/** Rows per register tile (5 x 8 measured fastest on x86-64 V8: 15 of the 16 xmm registers). */
export const MR = 5;
/** Columns per register tile (two f32x4). */
export const NR = 8;

/** Signature of `gemm_s1` .. `gemm_s5` (see the module comment). */
export type SmallGemm = (
  batch: number,
  m: number,
  n: number,
  kc: number,
  a: number,
  aRs: number,
  aCs: number,
  aBs: number,
  b: number,
  bRs: number,
  bBs: number,
  c: number,
  cRs: number,
  cBs: number,
  accumulate: number,
  tile: number,
) => void;

/** Row-tile heights with a `gemm_s*` entry point. */
export const SMALL_MR = [1, 2, 3, 4, 5] as const;

const P = (n: number) => new Array<typeof I32>(n).fill(I32);

/**
 * kernel(kc, a, a_rs, a_cs, bp, b_ks, c, c_rs, mr, nr, accumulate, tile): one MR x 8 tile. `fma`: the
 * multiply-adds as `f32x4.relaxed_madd` (see `relaxed-simd.ts`; only where the runtime validates it).
 */
export function kernel(mrMax: number, name = 'kernel', fma = false): Fn {
  const f = new Fn(name, P(12), false);
  const [kc, a, aRs, aCs, bp, bKs, c, cRs, mr, nr, accum, tile] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const rows: number[] = [a];
  for (let r = 1; r < mrMax; r++) rows.push(f.local(I32));
  const k = f.local(I32);
  const acc: [number, number][] = [];
  for (let r = 0; r < mrMax; r++) acc.push([f.local(V128), f.local(V128)]);
  const b0 = f.local(V128);
  const b1 = f.local(V128);
  const av = f.local(V128);
  const i = f.local(I32);
  const j = f.local(I32);
  const src = f.local(I32);
  const dst = f.local(I32);

  // Row pointers; rows at or past mr alias row 0 (computed, never stored), so loads stay in bounds.
  for (let r = 1; r < mrMax; r++) {
    f.get(rows[r - 1]!)
      .get(aRs)
      .add();
    f.get(a);
    f.get(mr).i32(r).gtS();
    f.select().set(rows[r]!);
  }
  // Row 0 is `a` itself; rows r >= 1 were derived from it before any increment.

  f.get(kc).set(k);
  f.block().loop();
  f.get(k).eqz().brIf(1);
  f.get(bp).v128Load(0).set(b0);
  f.get(bp).v128Load(16).set(b1);
  for (let r = 0; r < mrMax; r++) {
    const [lo, hi] = acc[r]!;
    f.get(rows[r]!).v128Load32Splat().set(av);
    if (fma) {
      f.get(av)
        .get(b0)
        .get(lo)
        .raw(...RELAXED_MADD)
        .set(lo);
      f.get(av)
        .get(b1)
        .get(hi)
        .raw(...RELAXED_MADD)
        .set(hi);
    } else {
      f.get(lo).get(av).get(b0).f32x4Mul().f32x4Add().set(lo);
      f.get(hi).get(av).get(b1).f32x4Mul().f32x4Add().set(hi);
    }
    f.incBy(rows[r]!, aCs);
  }
  f.incBy(bp, bKs);
  f.get(k).i32(1).sub().set(k);
  f.br(0);
  f.end().end();

  // Full tile: v128 stores (or load-add-store) straight into C.
  const fullTile = (accumulate: boolean) => {
    f.get(c).set(dst);
    for (let r = 0; r < mrMax; r++) {
      for (let h = 0; h < 2; h++) {
        f.get(dst);
        if (accumulate)
          f.get(dst)
            .v128Load(16 * h)
            .get(acc[r]![h]!)
            .f32x4Add();
        else f.get(acc[r]![h]!);
        f.v128Store(16 * h);
      }
      if (r < mrMax - 1) f.incBy(dst, cRs);
    }
  };
  f.get(mr).i32(mrMax).eq().get(nr).i32(NR).eq().and().if();
  f.get(accum).if();
  fullTile(true);
  f.else();
  fullTile(false);
  f.end();
  f.else();
  // Partial tile: spill the accumulators to `tile`, then copy the valid mr x nr part.
  for (let r = 0; r < mrMax; r++) {
    f.get(tile)
      .get(acc[r]![0])
      .v128Store(32 * r);
    f.get(tile)
      .get(acc[r]![1])
      .v128Store(32 * r + 16);
  }
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).get(mr).geS().brIf(1);
  f.get(c).get(i).get(cRs).mul().add().set(dst);
  f.get(tile).get(i).i32(32).mul().add().set(src);
  f.i32(0).set(j);
  f.block().loop();
  f.get(j).get(nr).geS().brIf(1);
  f.get(dst);
  f.get(src).f32Load();
  f.get(dst).f32Load().f32(0).get(accum).select(); // accumulate ? C[i][j] : 0
  f.f32Add();
  f.f32Store();
  f.incConst(dst, 4).incConst(src, 4).incConst(j, 1);
  f.br(0);
  f.end().end();
  f.incConst(i, 1);
  f.br(0);
  f.end().end();
  f.end();
  return f;
}

/** gemm(m, n, kc, a, a_rs, a_cs, bp, b_ks, b_ps, c, c_rs, accumulate, tile) */
export function gemmFn(kernelIndex: number, mrMax: number): Fn {
  const f = new Fn('gemm', P(13));
  const [m, n, kc, a, aRs, aCs, bp, bKs, bPs, c, cRs, accum, tile] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
  ];
  const i0 = f.local(I32);
  const j0 = f.local(I32);
  const arow = f.local(I32);
  const crow = f.local(I32);
  const bpp = f.local(I32);
  const aStep = f.local(I32);
  const cStep = f.local(I32);
  const rem = f.local(I32);

  f.get(aRs).i32(mrMax).mul().set(aStep);
  f.get(cRs).i32(mrMax).mul().set(cStep);
  f.get(a).set(arow);
  f.get(c).set(crow);
  f.i32(0).set(i0);
  f.block().loop();
  f.get(i0).get(m).geS().brIf(1);
  f.i32(0).set(j0);
  f.get(bp).set(bpp);
  f.block().loop();
  f.get(j0).get(n).geS().brIf(1);
  // kernel(kc, arow, a_rs, a_cs, bpp, b_ks, crow + 4*j0, c_rs, min(MR, m-i0), min(8, n-j0), accum, tile)
  f.get(kc).get(arow).get(aRs).get(aCs).get(bpp).get(bKs);
  f.get(crow).get(j0).i32(4).mul().add();
  f.get(cRs);
  f.i32(mrMax).get(m).get(i0).sub().tee(rem).get(rem).i32(mrMax).gtS().select();
  f.i32(NR).get(n).get(j0).sub().tee(rem).get(rem).i32(NR).gtS().select();
  f.get(accum).get(tile);
  f.call(kernelIndex);
  f.incConst(j0, NR).incBy(bpp, bPs);
  f.br(0);
  f.end().end();
  f.incConst(i0, mrMax).incBy(arow, aStep).incBy(crow, cStep);
  f.br(0);
  f.end().end();
  return f;
}

/** pack_b(kc, n, b, b_rs, b_cs, dst) */
export function packB(): Fn {
  const f = new Fn('pack_b', P(6));
  const [kc, n, b, bRs, bCs, dst] = [0, 1, 2, 3, 4, 5];
  const j0 = f.local(I32);
  const p = f.local(I32);
  const s = f.local(I32);
  const t = f.local(I32);
  const nr = f.local(I32);
  const jj = f.local(I32);
  const bStep = f.local(I32);

  f.get(bCs).i32(NR).mul().set(bStep);
  f.i32(0).set(j0);
  f.block().loop();
  f.get(j0).get(n).geS().brIf(1);
  f.i32(NR).get(n).get(j0).sub().tee(nr).get(nr).i32(NR).gtS().select().set(nr);
  f.get(b).set(s);
  f.i32(0).set(p);

  const pLoop = (body: () => void) => {
    f.block().loop();
    f.get(p).get(kc).geS().brIf(1);
    body();
    f.incBy(s, bRs).incConst(dst, 32).incConst(p, 1);
    f.br(0);
    f.end().end();
  };

  f.get(nr).i32(NR).eq().if();
  f.get(bCs).i32(4).eq().if();
  pLoop(() => {
    f.get(dst).get(s).v128Load(0).v128Store(0);
    f.get(dst).get(s).v128Load(16).v128Store(16);
  });
  f.else();
  pLoop(() => {
    f.get(s).set(t);
    for (let q = 0; q < NR; q++) {
      f.get(dst)
        .get(t)
        .f32Load()
        .f32Store(4 * q);
      if (q < NR - 1) f.incBy(t, bCs);
    }
  });
  f.end();
  f.else();
  pLoop(() => {
    // Zero the panel row, then copy the nr valid columns.
    f.get(dst).i32(0).i32(32).memoryFill();
    f.get(s).set(t);
    f.i32(0).set(jj);
    f.block().loop();
    f.get(jj).get(nr).geS().brIf(1);
    f.get(dst).get(jj).i32(4).mul().add();
    f.get(t).f32Load();
    f.f32Store();
    f.incBy(t, bCs).incConst(jj, 1);
    f.br(0);
    f.end().end();
  });
  f.end();
  f.incConst(j0, NR).incBy(b, bStep);
  f.br(0);
  f.end().end();
  return f;
}
/**
 * gemm_s{mr}(batch, m, n, kc, a, a_rs, a_cs, a_bs, b, b_rs, b_bs, c, c_rs, c_bs, accumulate, tile):
 * B read in place (b_ks = b_rs, panels 32 bytes apart), panel-outer loop.
 */
export function smallGemmFn(kernelIndex: number, mr: number): Fn {
  const f = new Fn(`gemm_s${mr}`, P(16));
  const [batch, m, n, kc, a, aRs, aCs, aBs, b, bRs, bBs, c, cRs, cBs, accum, tile] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  ];
  const bi = f.local(I32);
  const j0 = f.local(I32);
  const i0 = f.local(I32);
  const arow = f.local(I32);
  const crow = f.local(I32);
  const bcol = f.local(I32);
  const aStep = f.local(I32);
  const cStep = f.local(I32);
  const rem = f.local(I32);

  f.get(aRs).i32(mr).mul().set(aStep);
  f.get(cRs).i32(mr).mul().set(cStep);
  f.i32(0).set(bi);
  f.block().loop();
  f.get(bi).get(batch).geS().brIf(1);
  f.i32(0).set(j0);
  f.block().loop();
  f.get(j0).get(n).geS().brIf(1);
  f.get(b).get(j0).i32(4).mul().add().set(bcol);
  f.get(c).get(j0).i32(4).mul().add().set(crow);
  f.get(a).set(arow);
  f.i32(0).set(i0);
  f.block().loop();
  f.get(i0).get(m).geS().brIf(1);
  // kernel(kc, arow, a_rs, a_cs, bcol, b_rs, crow, c_rs, min(mr, m-i0), min(8, n-j0), accum, tile)
  f.get(kc).get(arow).get(aRs).get(aCs).get(bcol).get(bRs).get(crow).get(cRs);
  f.i32(mr).get(m).get(i0).sub().tee(rem).get(rem).i32(mr).gtS().select();
  f.i32(NR).get(n).get(j0).sub().tee(rem).get(rem).i32(NR).gtS().select();
  f.get(accum).get(tile);
  f.call(kernelIndex);
  f.incConst(i0, mr).incBy(arow, aStep).incBy(crow, cStep);
  f.br(0);
  f.end().end();
  f.incConst(j0, NR);
  f.br(0);
  f.end().end();
  f.incBy(a, aBs).incBy(b, bBs).incBy(c, cBs).incConst(bi, 1);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * nt_{R}x{C}(kv_bytes, k_bytes, a, a_rs, b, b_rs, c, c_rs, accumulate): one R x C block of
 * C = A B^T, all rows contiguous along k: f32x4 partial sums up to kv_bytes (k rounded down to 4
 * floats), a horizontal sum, then the scalar tail up to k_bytes. `fma`: as in {@link kernel}.
 */
export function ntTile(R: number, C: number, fma = false): Fn {
  const f = new Fn(`nt_${R}x${C}`, P(9), false);
  const [kv, kb, a, aRs, b, bRs, c, cRs, accum] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const ar: number[] = [];
  for (let r = 0; r < R; r++) ar.push(r === 0 ? a : f.local(I32));
  const br: number[] = [];
  for (let q = 0; q < C; q++) br.push(q === 0 ? b : f.local(I32));
  const off = f.local(I32);
  const acc: number[][] = [];
  for (let r = 0; r < R; r++) {
    const row: number[] = [];
    for (let q = 0; q < C; q++) row.push(f.local(V128));
    acc.push(row);
  }
  const av: number[] = [];
  for (let r = 0; r < R; r++) av.push(f.local(V128));
  const bv = f.local(V128);
  const sums: number[][] = acc.map((row) => row.map(() => f.local(F32)));
  const as: number[] = [];
  for (let r = 0; r < R; r++) as.push(f.local(F32));
  const bs = f.local(F32);

  for (let r = 1; r < R; r++)
    f.get(ar[r - 1]!)
      .get(aRs)
      .add()
      .set(ar[r]!);
  for (let q = 1; q < C; q++)
    f.get(br[q - 1]!)
      .get(bRs)
      .add()
      .set(br[q]!);
  // Vector part (the v128 locals start at zero: one call per block).
  f.i32(0).set(off);
  f.block().loop();
  f.get(off).get(kv).geS().brIf(1);
  for (let r = 0; r < R; r++) f.get(ar[r]!).get(off).add().v128Load().set(av[r]!);
  for (let q = 0; q < C; q++) {
    f.get(br[q]!).get(off).add().v128Load().set(bv);
    for (let r = 0; r < R; r++) {
      const x = acc[r]![q]!;
      if (fma)
        f.get(av[r]!)
          .get(bv)
          .get(x)
          .raw(...RELAXED_MADD)
          .set(x);
      else f.get(x).get(av[r]!).get(bv).f32x4Mul().f32x4Add().set(x);
    }
  }
  f.incConst(off, 16);
  f.br(0);
  f.end().end();
  // Horizontal sums: (l0 + l1) + (l2 + l3).
  for (let r = 0; r < R; r++) {
    for (let q = 0; q < C; q++) {
      const x = acc[r]![q]!;
      f.get(x).f32x4ExtractLane(0).get(x).f32x4ExtractLane(1).f32Add();
      f.get(x).f32x4ExtractLane(2).get(x).f32x4ExtractLane(3).f32Add();
      f.f32Add().set(sums[r]![q]!);
    }
  }
  // Scalar tail.
  f.block().loop();
  f.get(off).get(kb).geS().brIf(1);
  for (let r = 0; r < R; r++) f.get(ar[r]!).get(off).add().f32Load().set(as[r]!);
  for (let q = 0; q < C; q++) {
    f.get(br[q]!).get(off).add().f32Load().set(bs);
    for (let r = 0; r < R; r++) {
      const s = sums[r]![q]!;
      f.get(s).get(as[r]!).get(bs).f32Mul().f32Add().set(s);
    }
  }
  f.incConst(off, 4);
  f.br(0);
  f.end().end();
  // Store (adding to C when accumulating).
  for (let r = 0; r < R; r++) {
    for (let q = 0; q < C; q++) {
      f.get(c);
      f.get(sums[r]![q]!);
      f.get(c)
        .f32Load(4 * q)
        .f32(0)
        .get(accum)
        .select();
      f.f32Add();
      f.f32Store(4 * q);
    }
    if (r < R - 1) f.incBy(c, cRs);
  }
  return f;
}

/** The (R, C) blocks of gemm_nt, in this order after the function at index `first`. */
export const NT_TILES = [
  [2, 4],
  [2, 1],
  [1, 4],
  [1, 1],
] as const;

/** gemm_nt(batch, m, n, k, a, a_rs, a_bs, b, b_rs, b_bs, c, c_rs, c_bs, accumulate) */
export function gemmNtFn(first: number): Fn {
  const f = new Fn('gemm_nt', P(14));
  const [batch, m, n, k, a, aRs, aBs, b, bRs, bBs, c, cRs, cBs, accum] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
  ];
  const bi = f.local(I32);
  const i = f.local(I32);
  const j = f.local(I32);
  const kv = f.local(I32);
  const kb = f.local(I32);
  const arow = f.local(I32);
  const crow = f.local(I32);
  const bcol = f.local(I32);
  const ccol = f.local(I32);
  const n4 = f.local(I32);

  f.get(k).i32(-4).and().i32(4).mul().set(kv);
  f.get(k).i32(4).mul().set(kb);
  f.get(n).i32(-4).and().set(n4);
  // One pass of the column loops for row blocks of R rows (tile indices for C = 4 and C = 1).
  const columns = (wide: number, narrow: number) => {
    f.get(b).set(bcol);
    f.get(crow).set(ccol);
    f.i32(0).set(j);
    f.block().loop();
    f.get(j).get(n4).geS().brIf(1);
    f.get(kv).get(kb).get(arow).get(aRs).get(bcol).get(bRs).get(ccol).get(cRs).get(accum);
    f.call(first + wide);
    f.incConst(j, 4).incConst(ccol, 16);
    f.get(bcol).get(bRs).i32(4).mul().add().set(bcol);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(j).get(n).geS().brIf(1);
    f.get(kv).get(kb).get(arow).get(aRs).get(bcol).get(bRs).get(ccol).get(cRs).get(accum);
    f.call(first + narrow);
    f.incConst(j, 1).incConst(ccol, 4).incBy(bcol, bRs);
    f.br(0);
    f.end().end();
  };
  f.i32(0).set(bi);
  f.block().loop();
  f.get(bi).get(batch).geS().brIf(1);
  f.get(a).set(arow);
  f.get(c).set(crow);
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).get(m).geS().brIf(1);
  f.get(m).get(i).sub().i32(2).geS().if();
  columns(0, 1);
  f.incConst(i, 2);
  f.get(arow).get(aRs).i32(2).mul().add().set(arow);
  f.get(crow).get(cRs).i32(2).mul().add().set(crow);
  f.else();
  columns(2, 3);
  f.incConst(i, 1).incBy(arow, aRs).incBy(crow, cRs);
  f.end();
  f.br(0);
  f.end().end();
  f.incBy(a, aBs).incBy(b, bBs).incBy(c, cBs).incConst(bi, 1);
  f.br(0);
  f.end().end();
  return f;
}
