/**
 * The memory kernels of the module assembled in `kernel-module.ts`: whole rows zeroed, copied, gathered,
 * scatter-added or summed (`zero`, `copy2d`, `gather`, `scatter_add_*`, `col_sum_*`; their ABI is described
 * there). They live next to the GEMM kernels because they share the backend's memory and one instantiation.
 */
import { Fn, I32 } from './emit.js';

const P = (n: number) => new Array<typeof I32>(n).fill(I32);

/** zero(ptr, bytes) */
export function zeroFn(): Fn {
  const f = new Fn('zero', P(2));
  f.get(0).i32(0).get(1).memoryFill();
  return f;
}

/**
 * Emits dst[0..len) += src[0..len) (f32 or i32): f32x4/i32x4 up to vecEnd (len rounded down to 4),
 * then scalars. `e` is a scratch i32 local.
 */
function emitRowAdd(
  f: Fn,
  kind: 'f32' | 'i32',
  dst: number,
  src: number,
  len: number,
  vecEnd: number,
  e: number,
): void {
  f.i32(0).set(e);
  f.block().loop();
  f.get(e).get(vecEnd).geS().brIf(1);
  f.get(dst).get(e).i32(4).mul().add();
  f.get(dst).get(e).i32(4).mul().add().v128Load();
  f.get(src).get(e).i32(4).mul().add().v128Load();
  if (kind === 'f32') f.f32x4Add();
  else f.i32x4Add();
  f.v128Store();
  f.incConst(e, 4);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(e).get(len).geS().brIf(1);
  f.get(dst).get(e).i32(4).mul().add();
  if (kind === 'f32') {
    f.get(dst).get(e).i32(4).mul().add().f32Load();
    f.get(src).get(e).i32(4).mul().add().f32Load();
    f.f32Add().f32Store();
  } else {
    f.get(dst).get(e).i32(4).mul().add().i32Load();
    f.get(src).get(e).i32(4).mul().add().i32Load();
    f.add().i32Store();
  }
  f.incConst(e, 1);
  f.br(0);
  f.end().end();
}

/** scatter_add_{f32,i32}(out, x, ids, rows, tail, num_segments) */
export function scatterAdd(kind: 'f32' | 'i32'): Fn {
  const f = new Fn(`scatter_add_${kind}`, P(6));
  const [out, x, ids, rows, tail, numSegments] = [0, 1, 2, 3, 4, 5];
  const r = f.local(I32);
  const s = f.local(I32);
  const src = f.local(I32);
  const dst = f.local(I32);
  const e = f.local(I32);
  const vecEnd = f.local(I32);
  const rowBytes = f.local(I32);

  f.get(tail).i32(4).mul().set(rowBytes);
  f.get(tail).i32(-4).and().set(vecEnd); // tail rounded down to a multiple of 4
  f.get(x).set(src);
  f.i32(0).set(r);
  f.block().loop();
  f.get(r).get(rows).geS().brIf(1);
  f.get(ids).get(r).i32(4).mul().add().i32Load().set(s);
  f.get(s).get(numSegments).ltU().if();
  f.get(out).get(s).get(rowBytes).mul().add().set(dst);
  emitRowAdd(f, kind, dst, src, tail, vecEnd, e);
  f.end(); // if in range
  f.incBy(src, rowBytes).incConst(r, 1);
  f.br(0);
  f.end().end();
  return f;
}

/** col_sum_{f32,i32}(out, x, outer, red, inner) */
export function colSum(kind: 'f32' | 'i32'): Fn {
  const f = new Fn(`col_sum_${kind}`, P(5));
  const [out, x, outer, red, inner] = [0, 1, 2, 3, 4];
  const o = f.local(I32);
  const r = f.local(I32);
  const src = f.local(I32);
  const e = f.local(I32);
  const vecEnd = f.local(I32);
  const rowBytes = f.local(I32);

  f.get(inner).i32(4).mul().set(rowBytes);
  f.get(inner).i32(-4).and().set(vecEnd);
  f.get(x).set(src);
  f.i32(0).set(o);
  f.block().loop();
  f.get(o).get(outer).geS().brIf(1);
  f.get(out).i32(0).get(rowBytes).memoryFill();
  f.i32(0).set(r);
  f.block().loop();
  f.get(r).get(red).geS().brIf(1);
  emitRowAdd(f, kind, out, src, inner, vecEnd, e);
  f.incBy(src, rowBytes).incConst(r, 1);
  f.br(0);
  f.end().end();
  f.incBy(out, rowBytes).incConst(o, 1);
  f.br(0);
  f.end().end();
  return f;
}

/** gather(out, x, idx, batch, outer, n_idx, dim, slice_bytes) */
export function gatherFn(): Fn {
  const f = new Fn('gather', P(8));
  const [out, x, idx, batch, outer, nIdx, dim, sliceBytes] = [0, 1, 2, 3, 4, 5, 6, 7];
  const b = f.local(I32);
  const o = f.local(I32);
  const i = f.local(I32);
  const ip = f.local(I32);
  const xBlock = f.local(I32);
  const blockBytes = f.local(I32);

  f.get(dim).get(sliceBytes).mul().set(blockBytes); // one [dim, slice] block of x
  f.get(x).set(xBlock);
  f.i32(0).set(b);
  f.block().loop();
  f.get(b).get(batch).geS().brIf(1);
  f.i32(0).set(o);
  f.block().loop();
  f.get(o).get(outer).geS().brIf(1);
  f.get(idx).get(b).get(nIdx).mul().i32(4).mul().add().set(ip);
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).get(nIdx).geS().brIf(1);
  // memory.copy(out, xBlock + idx[b, i] * slice_bytes, slice_bytes); out += slice_bytes
  f.get(out);
  f.get(xBlock).get(ip).i32Load().get(sliceBytes).mul().add();
  f.get(sliceBytes);
  f.memoryCopy();
  f.incBy(out, sliceBytes).incConst(ip, 4).incConst(i, 1);
  f.br(0);
  f.end().end();
  f.incBy(xBlock, blockBytes).incConst(o, 1);
  f.br(0);
  f.end().end();
  f.incConst(b, 1);
  f.br(0);
  f.end().end();
  return f;
}

/** copy2d(dst, dst_rs, src, src_rs, rows, row_bytes) */
export function copy2dFn(): Fn {
  const f = new Fn('copy2d', P(6));
  const [dst, dstRs, src, srcRs, rows, rowBytes] = [0, 1, 2, 3, 4, 5];
  const r = f.local(I32);
  f.i32(0).set(r);
  f.block().loop();
  f.get(r).get(rows).geS().brIf(1);
  f.get(dst).get(src).get(rowBytes).memoryCopy();
  f.incBy(dst, dstRs).incBy(src, srcRs).incConst(r, 1);
  f.br(0);
  f.end().end();
  return f;
}
