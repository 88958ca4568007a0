/**
 * Fused kernels for Llama-style blocks and for the backward passes of the fused norms and activations
 * (module assembled in `kernel-module.ts`). Each replaces a chain of 5-15 tfjs kernels; all take their
 * element count / row width as is (no multiple-of-4 requirement: the tail runs one float at a time).
 *
 * - `rms_norm(out, x, gamma, rows, d, eps)`: per row of d floats, `x * (1 / sqrt(mean(x^2) + eps)) * gamma`.
 * - `rms_norm_grad(dx, dgamma, dy, x, gamma, rows, d, eps)`: with r = 1 / sqrt(mean(x^2) + eps) and
 *   c = r^3 * mean(dy * gamma * x): dx = r * dy * gamma - x * c; dgamma = sum over rows of dy * x * r.
 * - `layer_norm_grad(dx, dgamma, dbeta, dy, x, gamma, rows, d, eps)`: with xh = (x - mean) * rstd and
 *   g = dy * gamma: dx = rstd * (g - mean(g) - xh * mean(g * xh)); dgamma = sum dy * xh; dbeta = sum dy.
 * - `swiglu(out, gate, up, n)`: `gate * sigmoid(gate) * up` (Llama's MLP, `silu(gate_proj) * up_proj`).
 * - `swiglu_grad(dgate, dup, dy, gate, up, n)`: dup = dy * gate * s, dgate = dy * up * s * (1 + gate (1 - s)).
 * - `gelu_grad(dx, x, dy, n)`: the derivative of `gelu` in `fused-kernels.ts`,
 *   dy * (s + s (1 - s) x (C + 3 C3 x^2)) with s = sigmoid(x (C + C3 x^2)).
 *
 * Parameter gradients (dgamma, dbeta) are summed over rows in row order, so they are deterministic.
 */
import { F32, Fn, I32, V128 } from './emit.js';
import { constants, emitExp, expConstants, GELU_2C, GELU_2C3 } from './fused-kernels.js';

/** Loads and stores at byte offset `e` of a pointer: f32x4 in the main loop; one float, splatted to
 * every lane, in the tail (so one body serves both). */
interface Lanes {
  tail: boolean;
  load(ptr: number): Fn;
  store(ptr: number, value: () => void): void;
}

/** Emits a loop over [0, bytes): f32x4 up to `bytes4`, then one float at a time. */
function forLanes(f: Fn, e: number, bytes4: number, bytes: number, body: (io: Lanes) => void): void {
  f.i32(0).set(e);
  for (const tail of [false, true]) {
    f.block().loop();
    f.get(e)
      .get(tail ? bytes : bytes4)
      .geS()
      .brIf(1);
    body({
      tail,
      load: (ptr) =>
        tail ? f.get(ptr).get(e).add().f32Load().f32x4Splat() : f.get(ptr).get(e).add().v128Load(),
      store: (ptr, value) => {
        f.get(ptr).get(e).add();
        value();
        if (tail) f.f32x4ExtractLane(0).f32Store();
        else f.v128Store();
      },
    });
    f.incConst(e, tail ? 4 : 16);
    f.br(0);
    f.end().end();
  }
}

/** Row-sum accumulators: one f32x4 for the vector part, one (all lanes equal) for the tail. */
class Sum {
  readonly vec: number;
  readonly tail: number;
  constructor(private readonly f: Fn) {
    this.vec = f.local(V128);
    this.tail = f.local(V128);
  }
  /** Zeroes both (`zero` is a v128 local that is never set). */
  reset(zero: number): void {
    this.f.get(zero).set(this.vec).get(zero).set(this.tail);
  }
  /** acc += the v128 on the stack. */
  add(io: Lanes, value: () => void): void {
    const acc = io.tail ? this.tail : this.vec;
    this.f.get(acc);
    value();
    this.f.f32x4Add().set(acc);
  }
  /** Pushes the f32 total: ((l0 + l1) + (l2 + l3)) + tail. */
  total(): Fn {
    const f = this.f;
    f.get(this.vec).f32x4ExtractLane(0).get(this.vec).f32x4ExtractLane(1).f32Add();
    f.get(this.vec).f32x4ExtractLane(2).get(this.vec).f32x4ExtractLane(3).f32Add();
    return f.f32Add().get(this.tail).f32x4ExtractLane(0).f32Add();
  }
}

/** Locals for a loop over rows of d floats: byte counts and the lane cursor. */
function rowLocals(f: Fn, d: number) {
  const e = f.local(I32);
  const bytes = f.local(I32);
  const bytes4 = f.local(I32);
  const r = f.local(I32);
  const zero = f.local(V128); // never set: zero
  f.get(d).i32(4).mul().set(bytes);
  f.get(d).i32(-4).and().i32(4).mul().set(bytes4);
  return { e, bytes, bytes4, r, zero };
}

/** Emits `rows` iterations of `body`, then advances each pointer in `advance` by one row. */
function forRows(f: Fn, r: number, rows: number, bytes: number, advance: number[], body: () => void): void {
  f.i32(0).set(r);
  f.block().loop();
  f.get(r).get(rows).geS().brIf(1);
  body();
  for (const p of advance) f.incBy(p, bytes);
  f.incConst(r, 1);
  f.br(0);
  f.end().end();
}

/** Pushes `1 / sqrt(sum / d + eps)` (f32). */
function rstdOf(f: Fn, sum: () => void, d: number, eps: number): Fn {
  f.f32(1);
  sum();
  return f.get(d).raw(0xb2).f32Div().get(eps).f32Add().f32Sqrt().f32Div(); // 0xb2: f32.convert_i32_s
}

/** rms_norm(out, x, gamma, rows, d, eps) */
export function rmsNormFn(): Fn {
  const f = new Fn('rms_norm', [I32, I32, I32, I32, I32, F32]);
  const [out, x, gamma, rows, d, eps] = [0, 1, 2, 3, 4, 5];
  const { e, bytes, bytes4, r, zero } = rowLocals(f, d);
  const ss = new Sum(f);
  const xv = f.local(V128);
  const rv = f.local(V128);
  forRows(f, r, rows, bytes, [out, x], () => {
    ss.reset(zero);
    forLanes(f, e, bytes4, bytes, (io) => {
      io.load(x).set(xv);
      ss.add(io, () => f.get(xv).get(xv).f32x4Mul());
    });
    rstdOf(f, () => ss.total(), d, eps)
      .f32x4Splat()
      .set(rv);
    forLanes(f, e, bytes4, bytes, (io) =>
      io.store(out, () => {
        io.load(x).get(rv).f32x4Mul();
        io.load(gamma).f32x4Mul();
      }),
    );
  });
  return f;
}

/** rms_norm_grad(dx, dgamma, dy, x, gamma, rows, d, eps) */
export function rmsNormGradFn(): Fn {
  const f = new Fn('rms_norm_grad', [I32, I32, I32, I32, I32, I32, I32, F32]);
  const [dx, dgamma, dy, x, gamma, rows, d, eps] = [0, 1, 2, 3, 4, 5, 6, 7];
  const { e, bytes, bytes4, r, zero } = rowLocals(f, d);
  const ss = new Sum(f);
  const sp = new Sum(f);
  const [xv, gv, rv, cv] = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const rs = f.local(F32);
  f.get(dgamma).i32(0).get(bytes).memoryFill();
  forRows(f, r, rows, bytes, [dx, dy, x], () => {
    ss.reset(zero);
    sp.reset(zero);
    forLanes(f, e, bytes4, bytes, (io) => {
      io.load(x).set(xv);
      ss.add(io, () => f.get(xv).get(xv).f32x4Mul());
      sp.add(io, () => {
        io.load(dy);
        io.load(gamma).f32x4Mul().get(xv).f32x4Mul();
      });
    });
    rstdOf(f, () => ss.total(), d, eps)
      .tee(rs)
      .f32x4Splat()
      .set(rv);
    // c = r^3 * sum(dy * gamma * x) / d
    f.get(rs).get(rs).f32Mul().get(rs).f32Mul();
    sp.total().f32Mul().get(d).raw(0xb2).f32Div().f32x4Splat().set(cv);
    forLanes(f, e, bytes4, bytes, (io) => {
      io.load(x).set(xv);
      io.load(dy).set(gv);
      io.store(dx, () => {
        f.get(gv);
        io.load(gamma).f32x4Mul().get(rv).f32x4Mul();
        f.get(xv).get(cv).f32x4Mul().f32x4Sub();
      });
      io.store(dgamma, () => {
        io.load(dgamma).get(gv).get(xv).f32x4Mul().get(rv).f32x4Mul().f32x4Add();
      });
    });
  });
  return f;
}

/** layer_norm_grad(dx, dgamma, dbeta, dy, x, gamma, rows, d, eps) */
export function layerNormGradFn(): Fn {
  const f = new Fn('layer_norm_grad', [I32, I32, I32, I32, I32, I32, I32, I32, F32]);
  const [dx, dgamma, dbeta, dy, x, gamma, rows, d, eps] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const { e, bytes, bytes4, r, zero } = rowLocals(f, d);
  const s1 = new Sum(f);
  const s2 = new Sum(f);
  const v128 = () => f.local(V128);
  const [meanV, rstdV, xh, g, dv, aV, bV] = [v128(), v128(), v128(), v128(), v128(), v128(), v128()];
  const invD = f.local(F32);
  f.f32(1).get(d).raw(0xb2).f32Div().set(invD);
  f.get(dgamma).i32(0).get(bytes).memoryFill();
  f.get(dbeta).i32(0).get(bytes).memoryFill();
  const xhat = (io: Lanes) => io.load(x).get(meanV).f32x4Sub().get(rstdV).f32x4Mul().set(xh);
  forRows(f, r, rows, bytes, [dx, dy, x], () => {
    // mean and rstd exactly as the forward kernel: sum / d, then the centered sum of squares.
    s1.reset(zero);
    forLanes(f, e, bytes4, bytes, (io) => s1.add(io, () => io.load(x)));
    s1.total().get(d).raw(0xb2).f32Div().f32x4Splat().set(meanV);
    s2.reset(zero);
    forLanes(f, e, bytes4, bytes, (io) =>
      s2.add(io, () => {
        io.load(x).get(meanV).f32x4Sub().set(dv);
        f.get(dv).get(dv).f32x4Mul();
      }),
    );
    rstdOf(f, () => s2.total(), d, eps)
      .f32x4Splat()
      .set(rstdV);
    // sums of g and g * xh; the parameter gradients.
    s1.reset(zero);
    s2.reset(zero);
    forLanes(f, e, bytes4, bytes, (io) => {
      xhat(io);
      io.load(dy).set(dv);
      f.get(dv);
      io.load(gamma).f32x4Mul().set(g);
      s1.add(io, () => f.get(g));
      s2.add(io, () => f.get(g).get(xh).f32x4Mul());
      io.store(dgamma, () => io.load(dgamma).get(dv).get(xh).f32x4Mul().f32x4Add());
      io.store(dbeta, () => io.load(dbeta).get(dv).f32x4Add());
    });
    s1.total().get(invD).f32Mul().f32x4Splat().set(aV);
    s2.total().get(invD).f32Mul().f32x4Splat().set(bV);
    forLanes(f, e, bytes4, bytes, (io) => {
      xhat(io);
      io.store(dx, () => {
        io.load(dy);
        io.load(gamma).f32x4Mul().get(aV).f32x4Sub();
        f.get(xh).get(bV).f32x4Mul().f32x4Sub().get(rstdV).f32x4Mul();
      });
    });
  });
  return f;
}

/** Locals for an elementwise kernel over n floats (parameter `n`). */
function flatLocals(f: Fn, n: number) {
  const e = f.local(I32);
  const bytes = f.local(I32);
  const bytes4 = f.local(I32);
  f.get(n).i32(4).mul().set(bytes);
  f.get(n).i32(-4).and().i32(4).mul().set(bytes4);
  return { e, bytes, bytes4 };
}

/** Emits `dst = sigmoid(src) = 1 / (1 + exp(-src))`; `k` from expConstants; src is kept. */
function emitSigmoid(
  f: Fn,
  k: number[],
  zero: number,
  src: number,
  dst: number,
  t: [number, number, number],
): void {
  f.get(zero).get(src).f32x4Sub().set(dst);
  emitExp(f, k, dst, dst, t);
  f.get(k[5]!).get(k[5]!).get(dst).f32x4Add().f32x4Div().set(dst); // k[5] is 1
}

/** swiglu(out, gate, up, n) */
export function swigluFn(): Fn {
  const f = new Fn('swiglu', [I32, I32, I32, I32]);
  const [out, gate, up, n] = [0, 1, 2, 3];
  const { e, bytes, bytes4 } = flatLocals(f, n);
  const [gv, s, zero] = [f.local(V128), f.local(V128), f.local(V128)];
  const t: [number, number, number] = [f.local(V128), f.local(V128), f.local(V128)];
  const k = expConstants(f);
  forLanes(f, e, bytes4, bytes, (io) => {
    io.load(gate).set(gv);
    emitSigmoid(f, k, zero, gv, s, t);
    io.store(out, () => {
      f.get(gv).get(s).f32x4Mul();
      io.load(up).f32x4Mul();
    });
  });
  return f;
}

/** swiglu_grad(dgate, dup, dy, gate, up, n) */
export function swigluGradFn(): Fn {
  const f = new Fn('swiglu_grad', [I32, I32, I32, I32, I32, I32]);
  const [dgate, dup, dy, gate, up, n] = [0, 1, 2, 3, 4, 5];
  const { e, bytes, bytes4 } = flatLocals(f, n);
  const [gv, s, dyv, zero] = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const t: [number, number, number] = [f.local(V128), f.local(V128), f.local(V128)];
  const k = expConstants(f);
  const one = k[5]!;
  forLanes(f, e, bytes4, bytes, (io) => {
    io.load(gate).set(gv);
    io.load(dy).set(dyv);
    emitSigmoid(f, k, zero, gv, s, t);
    io.store(dup, () => f.get(dyv).get(gv).get(s).f32x4Mul().f32x4Mul());
    io.store(dgate, () => {
      f.get(dyv);
      io.load(up).f32x4Mul().get(s).f32x4Mul();
      f.get(one).get(gv).get(one).get(s).f32x4Sub().f32x4Mul().f32x4Add().f32x4Mul();
    });
  });
  return f;
}

/** gelu_grad(dx, x, dy, n) */
export function geluGradFn(): Fn {
  const f = new Fn('gelu_grad', [I32, I32, I32, I32]);
  const [dx, x, dy, n] = [0, 1, 2, 3];
  const { e, bytes, bytes4 } = flatLocals(f, n);
  const v128 = () => f.local(V128);
  const [xv, x2, u, s, zero] = [v128(), v128(), v128(), v128(), v128()];
  const t: [number, number, number] = [f.local(V128), f.local(V128), f.local(V128)];
  const k = expConstants(f);
  const one = k[5]!;
  const [c, c3, c33] = constants(f, [GELU_2C, GELU_2C3, 3 * GELU_2C3]);
  forLanes(f, e, bytes4, bytes, (io) => {
    io.load(x).set(xv);
    f.get(xv).get(xv).f32x4Mul().set(x2);
    f.get(x2).get(c3!).f32x4Mul().get(c!).f32x4Add().get(xv).f32x4Mul().set(u);
    emitSigmoid(f, k, zero, u, s, t);
    io.store(dx, () => {
      io.load(dy);
      // s + s (1 - s) x (C + 3 C3 x^2)
      f.get(s);
      f.get(s).get(one).get(s).f32x4Sub().f32x4Mul();
      f.get(xv).get(x2).get(c33!).f32x4Mul().get(c!).f32x4Add().f32x4Mul().f32x4Mul();
      f.f32x4Add().f32x4Mul();
    });
  });
  return f;
}
