/**
 * The one kernel the fused decode block (`decode-block-op.ts`) adds to the module of `kernel-module.ts`;
 * everything else it runs (LayerNorm, the GEMMs, GELU, prefix attention) is already there.
 *
 * - `add_f32(out, a, b, n)`: out[i] = a[i] + b[i] for n floats (f32x4, then the tail one at a time); `out`
 *   may be `a` or `b`. The residual additions of a block: IEEE addition is exact up to one rounding in any
 *   order, so this gives the bits of the backend's own `Add`.
 */
import { Fn, I32, V128 } from './emit.js';

/** add_f32(out, a, b, n) */
export function addF32Fn(): Fn {
  const f = new Fn('add_f32', [I32, I32, I32, I32]);
  const [out, a, b, n] = [0, 1, 2, 3];
  const e = f.local(I32);
  const end = f.local(I32);
  const end4 = f.local(I32);
  const v = f.local(V128);
  f.get(n).i32(4).mul().set(end);
  f.get(n).i32(-4).and().i32(4).mul().set(end4);
  f.block().loop();
  f.get(e).get(end4).geS().brIf(1);
  f.get(a).get(e).add().v128Load().get(b).get(e).add().v128Load().f32x4Add().set(v);
  f.get(out).get(e).add().get(v).v128Store();
  f.incConst(e, 16);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(e).get(end).geS().brIf(1);
  f.get(out).get(e).add();
  f.get(a).get(e).add().f32Load().get(b).get(e).add().f32Load().f32Add();
  f.f32Store();
  f.incConst(e, 4);
  f.br(0);
  f.end().end();
  return f;
}
