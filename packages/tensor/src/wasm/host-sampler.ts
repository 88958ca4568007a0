/**
 * Inverse-CDF draws from rows of logits on the host (what @relign/rollout's `TokenDistribution` does per row
 * and step) in a small wasm module: `exp` in float64 costs ~10 ns per call through `Math.exp`, which made it
 * the largest host cost of sampling (a 1024-token vocabulary: 16k calls per step of batch 16).
 *
 * Same bits as the JS loop it replaces: the exponential is fdlibm's `__ieee754_exp` (range reduction by
 * ln 2 in two parts, a degree-5 minimax polynomial, the exponent added to the bits), the algorithm V8 runs
 * for `Math.exp` (its src/base/ieee754.cc; tested equal on millions of arguments), in float64 with no fused
 * operations; the weights are summed in index order, the draw walks them in index order. Elsewhere
 * (no WebAssembly) the JS loop runs.
 *
 * - `draw(row, n, max, inv, u, out)`: with x_i = (row[i] - max) * inv (float32 logits promoted),
 *   w_i = exp(x_i) (stored as n float64 after the row), Z = sum w_i; then the first i with w_i != 0 whose
 *   running sum exceeds u * Z (else the last i with w_i != 0). Writes Z (f64) at `out` and i (i32) at
 *   `out + 8` (-1 when every w_i is 0).
 */
import { assemble, F64, Fn, I32, V128 } from './emit.js';

// fdlibm e_exp.c constants.
const LN2_HI = 6.9314718036912381649e-1;
const LN2_LO = 1.90821492927058770002e-10;
const INV_LN2 = 1.442695040888963387;
const P = [
  1.66666666666666019037e-1, -2.77777777770155933842e-3, 6.61375632143793436117e-5, -1.6533902205465251539e-6,
  4.13813679705723846039e-8,
];
const O_THRESHOLD = 7.09782712893383973096e2;
const U_THRESHOLD = -7.4513321910194110842e2;
const TWO_M1000 = 9.3326361850321887899e-302;

/** Opcodes the assembler has no method for. */
const op = {
  f64Load: [0x2b, 3, 0],
  f64Store: [0x39, 3, 0],
  f32Load: [0x2a, 2, 0],
  f64Add: [0xa0],
  f64Sub: [0xa1],
  f64Mul: [0xa2],
  f64Div: [0xa3],
  f64Eq: [0x61],
  f64Ne: [0x62],
  f64Lt: [0x63],
  f64Gt: [0x64],
  f64PromoteF32: [0xbb],
  f64ConvertI32S: [0xb7],
  i32TruncF64S: [0xaa],
  i64ReinterpretF64: [0xbd],
  f64ReinterpretI64: [0xbf],
  i64ExtendI32S: [0xac],
  i32WrapI64: [0xa7],
  i64ShrU: [0x88],
  i64Shl: [0x86],
  i64Add: [0x7c],
  i32ShrU: [0x76],
  i32GeU: [0x4f],
  i32GtU: [0x4b],
  i32Or: [0x72],
  i32Shl: [0x74],
  i64Const: (v: number) => [0x42, v],
} as const;

/**
 * Emits `out = exp(x)` (f64 locals) as fdlibm computes it; `t` are scratch locals: [hi, lo, c, t, y] (f64),
 * [hx, xsb, k] (i32). The special cases branch to the end of a block.
 */
function emitExp(f: Fn, x: number, out: number, t: { f: number[]; i: number[] }): void {
  const [hi, lo, c, tt, y] = t.f as [number, number, number, number, number];
  const [hx, xsb, k] = t.i as [number, number, number];
  const xr = t.f[5]!; // the reduced argument
  f.block();
  // hx = high word of x; xsb = its sign; hx &= 0x7fffffff
  f.get(x)
    .raw(...op.i64ReinterpretF64, ...op.i64Const(32), ...op.i64ShrU, ...op.i32WrapI64)
    .set(hx);
  f.get(hx)
    .i32(31)
    .raw(...op.i32ShrU)
    .set(xsb);
  f.get(hx).i32(0x7fffffff).and().set(hx);
  // |x| >= 709.78 (or inf/NaN): overflow, underflow or special values.
  f.get(hx)
    .i32(0x40862e42)
    .raw(...op.i32GeU)
    .if();
  {
    f.get(hx)
      .i32(0x7ff00000)
      .raw(...op.i32GeU)
      .if();
    {
      // NaN: x + x; +inf: x; -inf: 0.
      f.get(x)
        .get(x)
        .raw(...op.f64Ne)
        .if();
      f.get(x)
        .get(x)
        .raw(...op.f64Add)
        .set(out)
        .br(3);
      f.end();
      f.get(xsb).if();
      f.f64(0).set(out).br(3);
      f.end();
      f.get(x).set(out).br(2);
    }
    f.end();
    // x > o_threshold: +inf; x < u_threshold: 0.
    for (const [bound, cmp, value] of [
      [O_THRESHOLD, op.f64Gt, Infinity],
      [U_THRESHOLD, op.f64Lt, 0],
    ] as const) {
      f.get(x)
        .f64(bound)
        .raw(...cmp)
        .if();
      f.f64(value).set(out).br(2);
      f.end();
    }
  }
  f.end();
  f.get(x).set(xr);
  f.i32(0).set(k);
  // |x| > 0.5 ln2: reduce by k ln2 (hi - lo). |x| < 2^-28: 1 + x.
  f.get(hx)
    .i32(0x3fd62e42)
    .raw(...op.i32GtU)
    .if();
  {
    f.get(hx).i32(0x3ff0a2b2).ltU().if();
    {
      // k = +-1: hi = x -+ ln2_hi, lo = +-ln2_lo, k = 1 - 2 xsb
      f.get(xsb).if();
      f.get(x)
        .f64(-LN2_HI)
        .raw(...op.f64Sub)
        .set(hi);
      f.f64(-LN2_LO).set(lo);
      f.i32(-1).set(k);
      f.else();
      f.get(x)
        .f64(LN2_HI)
        .raw(...op.f64Sub)
        .set(hi);
      f.f64(LN2_LO).set(lo);
      f.i32(1).set(k);
      f.end();
    }
    f.else();
    {
      // k = (int)(invln2 * x + (xsb ? -0.5 : 0.5)); hi = x - k ln2_hi; lo = k ln2_lo
      f.get(x)
        .f64(INV_LN2)
        .raw(...op.f64Mul);
      f.f64(-0.5)
        .f64(0.5)
        .get(xsb)
        .select()
        .raw(...op.f64Add, ...op.i32TruncF64S)
        .set(k);
      f.get(k)
        .raw(...op.f64ConvertI32S)
        .set(tt);
      f.get(x)
        .get(tt)
        .f64(LN2_HI)
        .raw(...op.f64Mul, ...op.f64Sub)
        .set(hi);
      f.get(tt)
        .f64(LN2_LO)
        .raw(...op.f64Mul)
        .set(lo);
    }
    f.end();
    f.get(hi)
      .get(lo)
      .raw(...op.f64Sub)
      .set(xr);
  }
  f.else();
  {
    f.get(hx).i32(0x3e300000).ltU().if();
    f.f64(1)
      .get(x)
      .raw(...op.f64Add)
      .set(out)
      .br(2);
    f.end();
  }
  f.end();
  // t = x^2; c = x - t (P1 + t (P2 + t (P3 + t (P4 + t P5))))
  f.get(xr)
    .get(xr)
    .raw(...op.f64Mul)
    .set(tt);
  f.f64(P[4]!);
  for (let i = 3; i >= 0; i--)
    f.get(tt)
      .raw(...op.f64Mul)
      .f64(P[i]!)
      .raw(...op.f64Add);
  f.get(tt)
    .raw(...op.f64Mul)
    .set(c);
  f.get(xr)
    .get(c)
    .raw(...op.f64Sub)
    .set(c);
  f.get(k).eqz().if();
  {
    // 1 - ((x c) / (c - 2) - x)
    f.f64(1)
      .get(xr)
      .get(c)
      .raw(...op.f64Mul)
      .get(c)
      .f64(2)
      .raw(...op.f64Sub, ...op.f64Div);
    f.get(xr)
      .raw(...op.f64Sub, ...op.f64Sub)
      .set(out)
      .br(1);
  }
  f.end();
  // y = 1 - ((lo - (x c) / (2 - c)) - hi), then 2^k into the exponent bits (k < -1021: k + 1000, then
  // times 2^-1000, as fdlibm does for results near the subnormal range).
  f.f64(1)
    .get(lo)
    .get(xr)
    .get(c)
    .raw(...op.f64Mul)
    .f64(2)
    .get(c)
    .raw(...op.f64Sub, ...op.f64Div, ...op.f64Sub);
  f.get(hi)
    .raw(...op.f64Sub, ...op.f64Sub)
    .set(y);
  f.get(k).i32(-1021).geS().if();
  f.get(y)
    .raw(...op.i64ReinterpretF64)
    .get(k)
    .raw(...op.i64ExtendI32S, ...op.i64Const(52), ...op.i64Shl);
  f.raw(...op.i64Add, ...op.f64ReinterpretI64).set(out);
  f.else();
  f.get(y)
    .raw(...op.i64ReinterpretF64)
    .get(k)
    .i32(1000)
    .add();
  f.raw(...op.i64ExtendI32S, ...op.i64Const(52), ...op.i64Shl, ...op.i64Add, ...op.f64ReinterpretI64);
  f.f64(TWO_M1000)
    .raw(...op.f64Mul)
    .set(out);
  f.end();
  f.end();
}

/** Bits of the smallest |x| that fdlibm reduces by k ln2 (high word above 0x3fd62e42). */
const REDUCED_MIN = new Float64Array(new BigUint64Array([0x3fd62e4300000000n]).buffer)[0]!;
/** Below this |x| the reduced path never needs fdlibm's subnormal scaling (k >= -1021) nor overflows. */
const REDUCED_MAX = 700;

/** Pushes whether both lanes of the f64x2 local `xs` satisfy REDUCED_MIN <= |x| < REDUCED_MAX. */
function emitMainPathTest(f: Fn, xs: number): void {
  f.get(xs).simd(0xec).f64(REDUCED_MIN).simd(0x14).simd(0x4c); // f64x2.abs, splat, f64x2.ge
  f.get(xs).simd(0xec).f64(REDUCED_MAX).simd(0x14).simd(0x49); // f64x2.lt
  f.simd(0x4e).simd(0xc3); // v128.and, i64x2.all_true
}

/**
 * Emits `out = exp(x)` per f64x2 lane for lanes on fdlibm's main path (REDUCED_MIN <= |x| < REDUCED_MAX):
 * k = (int)(x / ln2 +- 0.5), hi = x - k ln2_hi, lo = k ln2_lo, then the polynomial and 2^k into the bits,
 * each the very operation `emitExp` does for that lane. For 0.5 ln2 < |x| < 1.5 ln2 fdlibm takes k = +-1
 * directly; this k is the same +-1, and +-1 * ln2_hi, +-1 * ln2_lo are exact, so hi and lo are too.
 */
function emitExpPair(f: Fn, v: { x: number; out: number; t: number[]; consts: Map<number, number> }): void {
  const [k, tk, hi, lo, xr, tt, c] = v.t as [number, number, number, number, number, number, number];
  const splat = (c0: number) => f.get(v.consts.get(c0)!);
  // half = x < 0 ? -0.5 : 0.5 (bitselect by the sign: i64x2.shr_s by 63)
  splat(-0.5);
  splat(0.5);
  f.get(v.x).i32(63).simd(0xcc).simd(0x52);
  f.set(tk);
  f.get(v.x);
  splat(INV_LN2);
  f.simd(0xf2).get(tk).simd(0xf0); // invln2 * x + half
  f.simd(0xfc).set(k); // i32x4.trunc_sat_f64x2_s_zero
  f.get(k).simd(0xfe).set(tk); // f64x2.convert_low_i32x4_s
  f.get(v.x).get(tk);
  splat(LN2_HI);
  f.simd(0xf2).simd(0xf1).set(hi); // x - t ln2_hi
  f.get(tk);
  splat(LN2_LO);
  f.simd(0xf2).set(lo); // t ln2_lo
  f.get(hi).get(lo).simd(0xf1).set(xr);
  f.get(xr).get(xr).simd(0xf2).set(tt);
  splat(P[4]!);
  for (let i = 3; i >= 0; i--) {
    f.get(tt).simd(0xf2);
    splat(P[i]!);
    f.simd(0xf0);
  }
  f.get(tt).simd(0xf2).set(c);
  f.get(xr).get(c).simd(0xf1).set(c);
  // y = 1 - ((lo - (x c) / (2 - c)) - hi)
  splat(1);
  f.get(lo).get(xr).get(c).simd(0xf2);
  splat(2);
  f.get(c).simd(0xf1).simd(0xf3).simd(0xf1);
  f.get(hi).simd(0xf1).simd(0xf1);
  // bits += k << 52 (i64x2.extend_low_i32x4_s, shl, add)
  f.get(k).simd(0xc7).i32(52).simd(0xcb).simd(0xce).set(v.out);
}

/** draw(row, n, max, inv, u, out) */
function drawFn(): Fn {
  const f = new Fn('draw', [I32, I32, F64, F64, F64, I32]);
  const [row, n, max, inv, u, out] = [0, 1, 2, 3, 4, 5];
  const i = f.local(I32);
  const w = f.local(I32);
  const token = f.local(I32);
  const last = f.local(I32);
  const [x, e, z, acc, target] = [0, 1, 2, 3, 4].map(() => f.local(F64)) as number[];
  const t = { f: [0, 1, 2, 3, 4, 5].map(() => f.local(F64)), i: [0, 1, 2].map(() => f.local(I32)) };
  // The weights follow the row (8-byte aligned).
  f.get(row).get(n).i32(4).mul().add().i32(7).add().i32(-8).and().set(w);
  // Pass 1: w_i = exp((row_i - max) * inv), z = sum in order. Two at a time in f64x2 where both take
  // fdlibm's main path (see emitExpPair), else one at a time; then the odd one.
  const xs = f.local(V128);
  const es = f.local(V128);
  // The pair path's constants, splatted once (not per pair).
  const consts = new Map<number, number>();
  for (const c0 of [-0.5, 0.5, INV_LN2, LN2_HI, LN2_LO, ...P, 1, 2]) {
    const l = f.local(V128);
    f.f64(c0).simd(0x14).set(l);
    consts.set(c0, l);
  }
  const v = { x: xs, out: es, t: [0, 1, 2, 3, 4, 5, 6].map(() => f.local(V128)), consts };
  const [maxV, invV] = [f.local(V128), f.local(V128)];
  f.get(max!).simd(0x14).set(maxV); // f64x2.splat
  f.get(inv!).simd(0x14).set(invV);
  const one = (lane: number | null) => {
    if (lane === null) {
      f.get(row)
        .get(i)
        .i32(4)
        .mul()
        .add()
        .raw(...op.f32Load, ...op.f64PromoteF32);
      f.get(max!)
        .raw(...op.f64Sub)
        .get(inv!)
        .raw(...op.f64Mul)
        .set(x!);
    } else f.get(xs).simd(0x21, lane).set(x!); // f64x2.extract_lane
    emitExp(f, x!, e!, t);
    f.get(w)
      .get(i)
      .i32(8)
      .mul()
      .add()
      .get(e!)
      .raw(0x39, 3, lane === 1 ? 8 : 0); // f64.store (the second lane's weight 8 bytes on)
    f.get(z!)
      .get(e!)
      .raw(...op.f64Add)
      .set(z!);
  };
  f.block().loop();
  f.get(i).i32(1).add().get(n).geS().brIf(1);
  // xs = (promote(row[i..i+2]) - max) * inv
  f.get(row).get(i).i32(4).mul().add().simd(0x5d, 3, 0).simd(0x5f); // v128.load64_zero, f64x2.promote_low_f32x4
  f.get(maxV).simd(0xf1).get(invV).simd(0xf2).set(xs); // f64x2.sub, f64x2.mul
  emitMainPathTest(f, xs);
  f.if();
  emitExpPair(f, v);
  f.get(w).get(i).i32(8).mul().add().get(es).v128Store();
  f.get(z!)
    .get(es)
    .simd(0x21, 0)
    .raw(...op.f64Add)
    .set(z!);
  f.get(z!)
    .get(es)
    .simd(0x21, 1)
    .raw(...op.f64Add)
    .set(z!);
  f.else();
  one(0);
  one(1);
  f.end();
  f.incConst(i, 2);
  f.br(0);
  f.end().end();
  f.get(i).get(n).ltS().if();
  one(null);
  f.end();
  // Pass 2: the first weight whose running sum exceeds u z.
  f.get(u!)
    .get(z!)
    .raw(...op.f64Mul)
    .set(target!);
  f.i32(-1).set(token).i32(-1).set(last).i32(0).set(i);
  f.block().loop();
  f.get(i).get(n).geS().brIf(1);
  f.get(w)
    .get(i)
    .i32(8)
    .mul()
    .add()
    .raw(...op.f64Load)
    .tee(e!)
    .f64(0)
    .raw(...op.f64Ne)
    .if();
  f.get(i).set(last);
  f.get(acc!)
    .get(e!)
    .raw(...op.f64Add)
    .tee(acc!)
    .get(target!)
    .raw(...op.f64Gt)
    .if();
  f.get(i).set(token).br(3);
  f.end();
  f.end();
  f.incConst(i, 1);
  f.br(0);
  f.end().end();
  f.get(out)
    .get(z!)
    .raw(...op.f64Store);
  // token < 0 (u z rounded up to the total): the last token with mass.
  f.get(out).get(last).get(token).get(token).i32(0).ltS().select();
  f.raw(0x36, 2, 8); // i32.store offset 8
  return f;
}

interface Sampler {
  memory: WebAssembly.Memory;
  draw(row: number, n: number, max: number, inv: number, u: number, out: number): void;
}

let sampler: Sampler | null | undefined;

function instance(): Sampler | null {
  if (sampler !== undefined) return sampler;
  try {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const module = new WebAssembly.Module(assemble([drawFn()], { shared: false }));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Sampler;
    sampler = { memory, draw: exports.draw };
  } catch {
    sampler = null;
  }
  return sampler;
}

/** Where the row goes: after Z and the token. */
const ROW = 16;

/**
 * The draw of rollout's `TokenDistribution` over a whole row (no top-k/top-p): with
 * w_i = Math.exp((logits[offset + i] - max) * inv) and Z their sum in index order, the first token whose
 * running sum exceeds u * Z (the last token with mass if rounding leaves none; -1 if every w_i is 0).
 * Bit-identical to that JS loop (rollout's tests compare them). Null where WebAssembly does not run: the
 * caller keeps its loop.
 */
export function drawFromLogits(
  logits: Float32Array,
  offset: number,
  n: number,
  max: number,
  inv: number,
  u: number,
): { token: number; Z: number } | null {
  const s = instance();
  if (s === null) return null;
  const need = ROW + 12 * n + 8;
  const have = s.memory.buffer.byteLength;
  if (need > have) s.memory.grow(Math.ceil((need - have) / 65536));
  new Float32Array(s.memory.buffer, ROW, n).set(logits.subarray(offset, offset + n));
  s.draw(ROW, n, max, inv, u, 0);
  const Z = new Float64Array(s.memory.buffer, 0, 1)[0]!;
  const token = new Int32Array(s.memory.buffer, 8, 1)[0]!;
  return { token, Z };
}

/**
 * The weights w_i = exp((logits[i] - max) * inv) as the module computes them (tests compare them with
 * `Math.exp`); null without WebAssembly.
 */
export function hostWeights(logits: Float32Array, max: number, inv: number): Float64Array | null {
  const s = instance();
  if (s === null) return null;
  drawFromLogits(logits, 0, logits.length, max, inv, 0.5);
  const w = (ROW + 4 * logits.length + 7) & ~7;
  return new Float64Array(s.memory.buffer, w, logits.length).slice();
}
