/**
 * The AdamW update of every parameter in one wasm call (the `RelignAdamW` kernel of `adamw-op.ts`), instead
 * of ~50 tfjs kernels per parameter per step (the gradient norm, the guard's look-ahead and the update
 * itself, each a dozen elementwise ops).
 *
 * `sum_squares(table, count, out)`: out[i] = Σ g[x]², g the gradient of entry i, added one element at a
 * time in f32 (each square rounded, then added): the order of tfjs's `sum(square(g))` on wasm, so the
 * gradient norm, and from it the clip factor, are bit-identical to `clipByGlobalNorm`'s.
 *
 * `adamw(table, count, consts, stats, scale, write)`: for each of `count` entries of `table` (9 words:
 * p, g, m, v, p_out, m_out, v_out, n, decay factor as f32) and element x of the n:
 *
 *   g  = g[x] * scale                          (the global-norm clip factor, read from `scale`)
 *   m' = m * β1 + g * (1 − β1);  v' = v * β2 + (g * g) * (1 − β2)
 *   p' = p * decay − ((m' / bc1) / (sqrt(v' / bc2) + ε)) * lr
 *
 * in f32, the same operations in the same order as `AdamW`'s tfjs ops, so the results are bit-identical
 * (wasm's f32x4 add/mul/div/sqrt are correctly rounded, and there is no fused multiply-add). `consts` is 8
 * f32: β1, 1 − β1, β2, 1 − β2, bc1, bc2, ε, lr. A decay factor of 1 (no decay) leaves p exact, as the
 * unfused path's skipped multiply does. With `write` set, p', m', v' go to the output pointers; always,
 * `stats` gets 4 f32 per entry for the update guard: Σ(p' − p)², max |p'|, max of |p'| where |p'| > |p|
 * (else 0), and Σ(p' − p') (0 iff every p' is finite). The tail of 1-3 elements runs through the same
 * f32x4 code with `v128.load32_zero` / `v128.store32_lane`: zero lanes add nothing to any statistic.
 */
import { F32, Fn, I32, uleb, V128 } from './emit.js';

/** Bytes of one table entry (9 words). */
export const ADAMW_ENTRY_BYTES = 36;

function simd(f: Fn, op: number, ...rest: number[]): Fn {
  return f.raw(0xfd, ...uleb(op), ...rest);
}

/** sum_squares(table, count, out) */
export function sumSquaresFn(): Fn {
  const f = new Fn('sum_squares', [I32, I32, I32]);
  const [table, count, out] = [0, 1, 2];
  const i = f.local(I32);
  const ptr = f.local(I32);
  const end = f.local(I32);
  const x = f.local(F32);
  const sum = f.local(F32);
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).get(count).geS().brIf(1);
  f.get(table).i32Load(4).set(ptr);
  f.get(table).i32Load(28).i32(4).mul().get(ptr).add().set(end);
  f.f32(0).set(sum);
  f.block().loop();
  f.get(ptr).get(end).raw(0x4f).brIf(1); // i32.ge_u: heap addresses may exceed 2 GiB
  f.get(ptr).f32Load().tee(x).get(x).f32Mul().get(sum).f32Add().set(sum);
  f.incConst(ptr, 4);
  f.br(0);
  f.end().end();
  f.get(out).get(sum).f32Store();
  f.incConst(out, 4).incConst(table, ADAMW_ENTRY_BYTES).incConst(i, 1);
  f.br(0);
  f.end().end();
  return f;
}

/** `n` new locals of one type. */
function locals(f: Fn, n: number, type: typeof I32 | typeof V128): number[] {
  return Array.from({ length: n }, () => f.local(type));
}

type Seven = [number, number, number, number, number, number, number];

/** adamw(table, count, consts, stats, scale, write) */
export function adamwFn(): Fn {
  const f = new Fn('adamw', [I32, I32, I32, I32, I32, I32]);
  const [table, count, consts, stats, scale, write] = [0, 1, 2, 3, 4, 5];
  const i = f.local(I32);
  const ent = f.local(I32);
  const e = f.local(I32);
  const bytes = f.local(I32);
  const bytes4 = f.local(I32);
  const [pp, gp, mp, vp, po, mo, vo] = locals(f, 7, I32) as Seven;
  const [b1, ob1, b2, ob2, bc1, bc2, eps, lr] = [0, 1, 2, 3, 4, 5, 6, 7].map((k): number => {
    const l = f.local(V128);
    f.get(consts)
      .f32Load(4 * k)
      .f32x4Splat()
      .set(l);
    return l;
  }) as [...Seven, number];
  const sc = f.local(V128);
  f.get(scale).f32Load().f32x4Splat().set(sc);
  const df = f.local(V128);
  const [g, p, mN, vN, pN, d, a] = locals(f, 7, V128) as Seven;
  const [sq, mx, gr, fin] = locals(f, 4, V128) as [number, number, number, number];
  const zero = f.local(V128); // never set: zero

  /** One f32x4 step at byte offset e; `load`/`store` are full vectors or lane 0 only. */
  const step = (load: (ptr: number) => void, store: (ptr: number, val: number) => void) => {
    load(gp);
    f.get(sc).f32x4Mul().set(g);
    load(pp);
    f.set(p);
    load(mp);
    f.get(b1).f32x4Mul().get(g).get(ob1).f32x4Mul().f32x4Add().set(mN);
    load(vp);
    f.get(b2).f32x4Mul().get(g).get(g).f32x4Mul().get(ob2).f32x4Mul().f32x4Add().set(vN);
    // p' = p * decay - ((m' / bc1) / (sqrt(v' / bc2) + eps)) * lr
    f.get(p).get(df).f32x4Mul();
    f.get(mN).get(bc1).f32x4Div();
    f.get(vN).get(bc2).f32x4Div();
    simd(f, 0xe3); // f32x4.sqrt
    f.get(eps).f32x4Add().f32x4Div().get(lr).f32x4Mul();
    f.f32x4Sub().set(pN);
    f.get(write).if();
    store(po, pN);
    store(mo, mN);
    store(vo, vN);
    f.end();
    f.get(pN).get(p).f32x4Sub().set(d);
    f.get(sq).get(d).get(d).f32x4Mul().f32x4Add().set(sq);
    f.get(pN);
    simd(f, 0xe0); // f32x4.abs
    f.set(a);
    f.get(mx).get(a).f32x4Max().set(mx);
    // grown: |p'| where |p'| > |p|, else 0 (the comparison mask ANDed with |p'|)
    f.get(gr).get(a).get(a).get(p);
    simd(f, 0xe0);
    simd(f, 0x44); // f32x4.gt
    simd(f, 0x4e); // v128.and
    f.f32x4Max().set(gr);
    f.get(fin).get(pN).get(pN).f32x4Sub().f32x4Add().set(fin);
  };
  const at = (ptr: number) => f.get(ptr).get(e).add();

  f.i32(0).set(i);
  f.get(table).set(ent);
  f.block().loop();
  f.get(i).get(count).geS().brIf(1);
  [pp, gp, mp, vp, po, mo, vo].forEach((l, k) =>
    f
      .get(ent)
      .i32Load(4 * k)
      .set(l),
  );
  f.get(ent).i32Load(28).i32(4).mul().set(bytes);
  f.get(bytes).i32(-16).and().set(bytes4);
  f.get(ent).f32Load(32).f32x4Splat().set(df);
  [sq, mx, gr, fin].forEach((l) => f.get(zero).set(l));
  f.i32(0).set(e);
  f.block().loop();
  f.get(e).get(bytes4).geS().brIf(1);
  step(
    (ptr) => at(ptr).v128Load(),
    (ptr, val) => at(ptr).get(val).v128Store(),
  );
  f.incConst(e, 16);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(e).get(bytes).geS().brIf(1);
  step(
    (ptr) => simd(at(ptr), 0x5c, 2, 0), // v128.load32_zero
    (ptr, val) => simd(at(ptr).get(val), 0x5a, 2, 0, 0), // v128.store32_lane 0
  );
  f.incConst(e, 4);
  f.br(0);
  f.end().end();
  // stats[i] = [sum sq, max |p'|, max grown, sum (p' - p')], each a horizontal reduction of its f32x4
  const reduce = (acc: number, op: 'add' | 'max', off: number) => {
    f.get(stats).get(acc).f32x4ExtractLane(0).get(acc).f32x4ExtractLane(1);
    if (op === 'add') f.f32Add();
    else f.f32Max();
    f.get(acc).f32x4ExtractLane(2).get(acc).f32x4ExtractLane(3);
    if (op === 'add') f.f32Add().f32Add();
    else f.f32Max().f32Max();
    f.f32Store(off);
  };
  reduce(sq, 'add', 0);
  reduce(mx, 'max', 4);
  reduce(gr, 'max', 8);
  reduce(fin, 'add', 12);
  f.incConst(stats, 16).incConst(ent, ADAMW_ENTRY_BYTES).incConst(i, 1);
  f.br(0);
  f.end().end();
  return f;
}
