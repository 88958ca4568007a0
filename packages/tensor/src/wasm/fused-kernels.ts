/**
 * Fused elementwise / row kernels of the module assembled in `kernel-module.ts`, each replacing a chain
 * of 4-8 tfjs kernels whose dispatch (~4-10 µs each) dominates at decode sizes:
 *
 * - `gelu(out, x, n4)`: GPT-2's tanh-form GELU, `x * sigmoid(x * (C + C * 0.044715 * x^2))` with
 *   C = 2 sqrt(2/pi), on the first n4 (a multiple of 4) floats; the caller runs the tail through a
 *   16-byte scratch block.
 * - `layer_norm(out, x, gamma, beta, rows, d, eps)`: per row of d floats, biased variance (as
 *   torch.nn.LayerNorm): `(x - mean) * (1 / sqrt(var + eps)) * gamma + beta`.
 *
 * - `token_logprob(out, sums, x, tok, rows, v, inv_tau)`: per row of v logits, z = x * inv_tau,
 *   out[r] = z[tok[r]] - max(z) (NaN for an id outside [0, v)) and sums[r] = sum exp(z - max(z)); the
 *   caller subtracts log(sums[r]) (wasm has no log instruction; one per row in JS).
 *
 * exp is Cephes' `expf` (range reduction by ln 2 in two parts, a degree-6 polynomial, the exponent
 * added through the float's bits): within 2 ulp of the true value on [-88.37, 88.37], clamped outside.
 */
import { F32, Fn, I32, uleb, V128 } from './emit.js';

/** 2 sqrt(2/pi) and its product with 0.044715 (the unfused `gelu` in @relign/lm uses the same two). */
export const GELU_2C = 1.5957691216057308;
export const GELU_2C3 = GELU_2C * 0.044715;

const EXP_POLY = [
  1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
];

/** v128 locals holding splatted constants, set once before a loop. */
export function constants(f: Fn, values: number[]): number[] {
  return values.map((v) => {
    const l = f.local(V128);
    f.f32(v).f32x4Splat().set(l);
    return l;
  });
}

/** Emits `dst = exp(src)` (f32x4); `k` are the locals made by {@link expConstants}; t0..t2 scratch. */
export function emitExp(f: Fn, k: number[], src: number, dst: number, t: [number, number, number]): void {
  const [hi, lo, log2e, c1, c2, one] = k;
  const poly = k.slice(6, 6 + EXP_POLY.length);
  const magic = k[6 + EXP_POLY.length]!;
  const [x, fx, z] = t;
  // Clamp with pmin/pmax (one minps/maxps on x86; f32x4.min/max cost ~7 instructions each for their NaN
  // rules): pmin(x, hi) = hi < x ? hi : x, which keeps a NaN x as NaN just as min does.
  f.get(src)
    .get(hi!)
    .raw(0xfd, ...uleb(0xea))
    .get(lo!)
    .raw(0xfd, ...uleb(0xeb))
    .set(x);
  f.get(x).get(log2e!).f32x4Mul().f32x4Nearest().set(fx);
  f.get(x).get(fx).get(c1!).f32x4Mul().f32x4Sub();
  f.get(fx).get(c2!).f32x4Mul().f32x4Sub().set(x);
  f.get(x).get(x).f32x4Mul().set(z);
  // Horner: ((((p0 x + p1) x + p2) x + p3) x + p4) x + p5, then * z + x + 1.
  f.get(poly[0]!);
  for (let i = 1; i < poly.length; i++) f.get(x).f32x4Mul().get(poly[i]!).f32x4Add();
  f.get(z).f32x4Mul().get(x).f32x4Add().get(one!).f32x4Add();
  // * 2^fx, built from the exponent bits: (fx + 127) << 23. fx is a whole number in [-128, 128], so the
  // float fx + (127 + 1.5 * 2^23) holds fx + 127 in its low mantissa bits, and the shift keeps exactly the
  // 9 bits that i32x4.trunc_sat (several instructions on x86) + 127 would give.
  f.get(fx).get(magic).f32x4Add().i32(23).i32x4Shl();
  f.f32x4Mul().set(dst);
}

export function expConstants(f: Fn): number[] {
  return constants(f, [
    88.3762626647949,
    -88.3762626647949,
    1.4426950408889634,
    0.693359375,
    -2.1219444e-4,
    1,
    ...EXP_POLY,
    127 + 1.5 * 2 ** 23,
  ]);
}

/** gelu(out, x, n4) */
export function geluFn(): Fn {
  const f = new Fn('gelu', [I32, I32, I32]);
  const [out, x, n4] = [0, 1, 2];
  const e = f.local(I32);
  const end = f.local(I32);
  const t: [number, number, number] = [f.local(V128), f.local(V128), f.local(V128)];
  const k = expConstants(f);
  const [c, c3] = constants(f, [GELU_2C, GELU_2C3]);
  const zero = f.local(V128); // locals start zeroed
  const one = k[5]!;
  f.get(n4).i32(4).mul().set(end);
  // Four independent f32x4 per iteration (their exp chains overlap; measured 16x512: 21 -> 10 µs), then
  // one at a time: the same math per float either way.
  for (const lanes of [4, 1]) {
    const vs = Array.from({ length: lanes }, () => [f.local(V128), f.local(V128)] as const);
    f.block().loop();
    f.get(e)
      .i32(16 * (lanes - 1))
      .add()
      .get(end)
      .geS()
      .brIf(1);
    vs.forEach(([v, u], i) => {
      f.get(x)
        .get(e)
        .add()
        .v128Load(16 * i)
        .set(v);
      // u = -(x * (C + C3 x^2)); out = x / (1 + exp(u))
      f.get(v).get(v).f32x4Mul().get(c3!).f32x4Mul().get(c!).f32x4Add().get(v).f32x4Mul().set(u);
      f.get(zero).get(u).f32x4Sub().set(u);
    });
    vs.forEach(([, u]) => emitExp(f, k, u, u, t));
    vs.forEach(([v, u], i) => {
      f.get(out).get(e).add();
      f.get(v).get(one).get(u).f32x4Add().f32x4Div();
      f.v128Store(16 * i);
    });
    f.incConst(e, 16 * lanes);
    f.br(0);
    f.end().end();
  }
  return f;
}

/**
 * Emits into the f32 local `sum` the sum over `len` bytes of floats at `ptr` (f32x4 lanes up to `len4`,
 * then the tail) of x, or of (x - square)^2 where `square` is a v128 local (the splatted mean).
 */
function emitRowSum(
  f: Fn,
  ptr: number,
  len: number,
  len4: number,
  sum: number,
  e: number,
  acc: number,
  zero: number,
  square: number | null,
): void {
  f.get(zero).set(acc);
  f.i32(0).set(e);
  f.block().loop();
  f.get(e).get(len4).geS().brIf(1);
  if (square === null) f.get(acc).get(ptr).get(e).add().v128Load().f32x4Add().set(acc);
  else {
    const d = f.local(V128);
    f.get(ptr).get(e).add().v128Load().get(square).f32x4Sub().set(d);
    f.get(acc).get(d).get(d).f32x4Mul().f32x4Add().set(acc);
  }
  f.incConst(e, 16);
  f.br(0);
  f.end().end();
  f.get(acc).f32x4ExtractLane(0).get(acc).f32x4ExtractLane(1).f32Add();
  f.get(acc).f32x4ExtractLane(2).get(acc).f32x4ExtractLane(3).f32Add();
  f.f32Add().set(sum);
  f.block().loop();
  f.get(e).get(len).geS().brIf(1);
  if (square === null) f.get(sum).get(ptr).get(e).add().f32Load().f32Add().set(sum);
  else {
    const d = f.local(F32);
    f.get(ptr).get(e).add().f32Load().get(square).f32x4ExtractLane(0).f32Sub().set(d);
    f.get(sum).get(d).get(d).f32Mul().f32Add().set(sum);
  }
  f.incConst(e, 4);
  f.br(0);
  f.end().end();
}

/** layer_norm(out, x, gamma, beta, rows, d, eps) */
export function layerNormFn(): Fn {
  const f = new Fn('layer_norm', [I32, I32, I32, I32, I32, I32, F32]);
  const [out, x, gamma, beta, rows, d, eps] = [0, 1, 2, 3, 4, 5, 6];
  const r = f.local(I32);
  const e = f.local(I32);
  const bytes = f.local(I32);
  const bytes4 = f.local(I32);
  const acc = f.local(V128);
  const zero = f.local(V128); // never set: zero
  const meanV = f.local(V128);
  const rstdV = f.local(V128);
  const sum = f.local(F32);
  const mean = f.local(F32);
  const rstd = f.local(F32);

  f.get(d).i32(4).mul().set(bytes);
  f.get(d).i32(-4).and().i32(4).mul().set(bytes4);
  f.i32(0).set(r);
  f.block().loop();
  f.get(r).get(rows).geS().brIf(1);
  emitRowSum(f, x, bytes, bytes4, sum, e, acc, zero, null);
  f.get(sum).get(d).raw(0xb2).f32Div().tee(mean).f32x4Splat().set(meanV); // f32.convert_i32_s
  emitRowSum(f, x, bytes, bytes4, sum, e, acc, zero, meanV);
  f.f32(1)
    .get(sum)
    .get(d)
    .raw(0xb2)
    .f32Div()
    .get(eps)
    .f32Add()
    .f32Sqrt()
    .f32Div()
    .tee(rstd)
    .f32x4Splat()
    .set(rstdV);
  // out = (x - mean) * rstd * gamma + beta
  f.i32(0).set(e);
  f.block().loop();
  f.get(e).get(bytes4).geS().brIf(1);
  f.get(out).get(e).add();
  f.get(x).get(e).add().v128Load().get(meanV).f32x4Sub().get(rstdV).f32x4Mul();
  f.get(gamma).get(e).add().v128Load().f32x4Mul();
  f.get(beta).get(e).add().v128Load().f32x4Add();
  f.v128Store();
  f.incConst(e, 16);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(e).get(bytes).geS().brIf(1);
  f.get(out).get(e).add();
  f.get(x).get(e).add().f32Load().get(mean).f32Sub().get(rstd).f32Mul();
  f.get(gamma).get(e).add().f32Load().f32Mul();
  f.get(beta).get(e).add().f32Load().f32Add();
  f.f32Store();
  f.incConst(e, 4);
  f.br(0);
  f.end().end();
  f.incBy(x, bytes).incBy(out, bytes).incConst(r, 1);
  f.br(0);
  f.end().end();
  return f;
}

/** token_logprob(out, sums, x, tok, rows, v, inv_tau) */
export function tokenLogprobFn(): Fn {
  const f = new Fn('token_logprob', [I32, I32, I32, I32, I32, I32, F32]);
  const [out, sums, x, tok, rows, v, invTau] = [0, 1, 2, 3, 4, 5, 6];
  const r = f.local(I32);
  const e = f.local(I32);
  const bytes = f.local(I32);
  const bytes4 = f.local(I32);
  const t = f.local(I32);
  const mx = f.local(F32);
  const sum = f.local(F32);
  const accV = f.local(V128);
  const tauV = f.local(V128);
  const maxV = f.local(V128);
  const z = f.local(V128);
  const tmp: [number, number, number] = [f.local(V128), f.local(V128), f.local(V128)];
  const k = expConstants(f);
  f.get(invTau).f32x4Splat().set(tauV);
  f.get(v).i32(4).mul().set(bytes);
  f.get(v).i32(-4).and().i32(4).mul().set(bytes4);
  f.i32(0).set(r);
  f.block().loop();
  f.get(r).get(rows).geS().brIf(1);
  // max(z): f32x4 lanes from -inf, then the tail.
  f.f32(-Infinity).f32x4Splat().set(accV);
  f.i32(0).set(e);
  f.block().loop();
  f.get(e).get(bytes4).geS().brIf(1);
  f.get(accV).get(x).get(e).add().v128Load().get(tauV).f32x4Mul().f32x4Max().set(accV);
  f.incConst(e, 16);
  f.br(0);
  f.end().end();
  f.get(accV).f32x4ExtractLane(0).get(accV).f32x4ExtractLane(1).f32Max();
  f.get(accV).f32x4ExtractLane(2).get(accV).f32x4ExtractLane(3).f32Max();
  f.f32Max().set(mx);
  f.block().loop();
  f.get(e).get(bytes).geS().brIf(1);
  f.get(mx).get(x).get(e).add().f32Load().get(invTau).f32Mul().f32Max().set(mx);
  f.incConst(e, 4);
  f.br(0);
  f.end().end();
  f.get(mx).f32x4Splat().set(maxV);
  // sum exp(z - max): f32x4, then the tail one lane at a time through the same vector exp.
  f.f32(0).f32x4Splat().set(accV);
  f.i32(0).set(e);
  f.block().loop();
  f.get(e).get(bytes4).geS().brIf(1);
  f.get(x).get(e).add().v128Load().get(tauV).f32x4Mul().get(maxV).f32x4Sub().set(z);
  emitExp(f, k, z, z, tmp);
  f.get(accV).get(z).f32x4Add().set(accV);
  f.incConst(e, 16);
  f.br(0);
  f.end().end();
  f.get(accV).f32x4ExtractLane(0).get(accV).f32x4ExtractLane(1).f32Add();
  f.get(accV).f32x4ExtractLane(2).get(accV).f32x4ExtractLane(3).f32Add();
  f.f32Add().set(sum);
  f.block().loop();
  f.get(e).get(bytes).geS().brIf(1);
  f.get(x).get(e).add().f32Load().get(invTau).f32Mul().get(mx).f32Sub().f32x4Splat().set(z);
  emitExp(f, k, z, z, tmp);
  f.get(sum).get(z).f32x4ExtractLane(0).f32Add().set(sum);
  f.incConst(e, 4);
  f.br(0);
  f.end().end();
  f.get(sums).get(sum).f32Store();
  // out[r] = z[t] - max, or NaN when t is outside [0, v).
  f.get(tok).i32Load().set(t);
  f.get(out);
  // The index is clamped to 0 when out of range, so the load never leaves the row.
  f.get(x).get(t).i32(0).get(t).get(v).ltU().select().i32(4).mul().add();
  f.f32Load().get(invTau).f32Mul().get(mx).f32Sub();
  f.f32(NaN);
  f.get(t).get(v).ltU();
  f.select();
  f.f32Store();
  f.incBy(x, bytes).incConst(out, 4).incConst(sums, 4).incConst(tok, 4).incConst(r, 1);
  f.br(0);
  f.end().end();
  return f;
}
