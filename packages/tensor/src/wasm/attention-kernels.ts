/**
 * Attention kernels of the module assembled in `kernel-module.ts` (wrapped as tfjs ops in
 * `attention-ops.ts`). Rows may have any width (the tail past the last multiple of 4 runs one float at a
 * time, splatted to every lane, through the same vector code).
 *
 * - `masked_softmax(out, x, bias, B, H, T, n, bias_bs)`: with x [B, H, T, n] and the additive bias rows
 *   `bias + b * bias_bs + t * 4n` (bias [B or 1, 1, T, n]; bias_bs = 0 broadcasts it over the batch):
 *   out = softmax(x + bias) along the last axis (the sum is formed in f32 exactly as tfjs's Add, so a row
 *   whose keys are all masked by -1e9 is uniform, as with the unfused ops).
 * - `masked_softmax_grad(dx, dy, p, rows, n)`: the softmax backward, dx = p * (dy - sum(dy * p)) per row.
 * - `prefix_attention(out, q, k, v, bias, scores, B, Hkv, R, len, cap, dh, scale, bias_bs, bias_rs,
 *   has_bias)`: softmax(q k^T * scale + bias) v over the first `len` of `cap` key positions, with q
 *   [B, Hkv, R, dh] (R query rows per key/value head: T, or G*T under grouped-query attention), k and v
 *   [B, Hkv, cap, dh] (a preallocated KV cache, read in place) and bias rows `bias + b * bias_bs +
 *   r * bias_rs` of len floats (ignored when has_bias is 0); `scores` is len floats of scratch. One row
 *   at a time: pass 1 forms the scores 4 keys at a time (4 dot products over f32x4 of dh, finished
 *   together: lane sums by shuffles, then scale, bias, store and a running max as f32x4; the last len % 4
 *   keys one at a time), pass 2 their exp (4 independent f32x4 at a time, then one) and sum and
 *   p = exp / sum, pass 3 sum_j p_j v_j (4 f32x4 of the output across all keys at a time, in key order).
 *   Every float is formed as by one key at a time.
 */
import { F32, Fn, I32, V128, type ValType } from './emit.js';
import { emitExp, expConstants } from './fused-kernels.js';

/**
 * Emits a loop over the byte offsets [0, bytes) of a row in local `e`: f32x4 while e < bytes4, then one
 * float at a time (`tail` true: loads splat the float to every lane; stores write lane 0).
 */
function forLanes(
  f: Fn,
  e: number,
  bytes4: number,
  bytes: number,
  body: (tail: boolean) => void,
  fromZero = true,
): void {
  if (fromZero) f.i32(0).set(e);
  for (const tail of [false, true]) {
    f.block().loop();
    f.get(e)
      .get(tail ? bytes : bytes4)
      .geS()
      .brIf(1);
    body(tail);
    f.incConst(e, tail ? 4 : 16);
    f.br(0);
    f.end().end();
  }
}

/** Pushes the f32x4 at byte `e` of `ptr` (or the float there, splatted). */
function load(f: Fn, ptr: number, e: number, tail: boolean): void {
  f.get(ptr).get(e).add();
  if (tail) f.f32Load().f32x4Splat();
  else f.v128Load();
}

/** Stores the v128 local `value` at byte `e` of `ptr` (lane 0 only in the tail). */
function store(f: Fn, ptr: number, e: number, tail: boolean, value: number): void {
  f.get(ptr).get(e).add().get(value);
  if (tail) f.f32x4ExtractLane(0).f32Store();
  else f.v128Store();
}

/** Pushes the f32 sum of a vector accumulator's lanes ((l0 + l1) + (l2 + l3)) plus lane 0 of `tailAcc`. */
function total(f: Fn, vec: number, tailAcc: number): void {
  f.get(vec).f32x4ExtractLane(0).get(vec).f32x4ExtractLane(1).f32Add();
  f.get(vec).f32x4ExtractLane(2).get(vec).f32x4ExtractLane(3).f32Add();
  f.f32Add().get(tailAcc).f32x4ExtractLane(0).f32Add();
}

/** Pushes the f32 max of a v128 local's lanes. */
function laneMax(f: Fn, vec: number): void {
  f.get(vec).f32x4ExtractLane(0).get(vec).f32x4ExtractLane(1).f32Max();
  f.get(vec).f32x4ExtractLane(2).get(vec).f32x4ExtractLane(3).f32Max();
  f.f32Max();
}

/** Independent f32x4 of a row whose exps are formed together. */
const EXP_BLOCK = 4;

/**
 * Emits the in-place softmax tail of a row of `bytes` at `row` whose max is in the v128 local `mxV`
 * (every lane): row = exp(row - max), then row /= sum. Leaves the sum splatted in `sumV`. The exp runs on
 * EXP_BLOCK independent f32x4 (`zs`) per iteration, their exps formed before any is stored or added to
 * the sum (the exp chains overlap), then one f32x4 at a time, then the tail: the same math per float and
 * the same additions in the same order either way.
 */
function emitExpNormalize(
  f: Fn,
  k: number[],
  row: number,
  bytes4: number,
  bytes: number,
  regs: {
    e: number;
    z: number;
    zs: number[];
    mxV: number;
    sumV: number;
    sumT: number;
    zero: number;
    t: [number, number, number];
  },
): void {
  const { e, z, zs, mxV, sumV, sumT, zero, t } = regs;
  f.get(zero).set(sumV).get(zero).set(sumT);
  f.i32(0).set(e);
  f.block().loop();
  f.get(e)
    .i32(16 * (EXP_BLOCK - 1))
    .add()
    .get(bytes4)
    .geS()
    .brIf(1);
  zs.forEach((zi, i) => {
    f.get(row)
      .get(e)
      .add()
      .v128Load(16 * i);
    f.get(mxV).f32x4Sub().set(zi);
  });
  zs.forEach((zi) => emitExp(f, k, zi, zi, t));
  zs.forEach((zi, i) => {
    f.get(row)
      .get(e)
      .add()
      .get(zi)
      .v128Store(16 * i);
    f.get(sumV).get(zi).f32x4Add().set(sumV);
  });
  f.incConst(e, 16 * EXP_BLOCK);
  f.br(0);
  f.end().end();
  forLanes(
    f,
    e,
    bytes4,
    bytes,
    (tail) => {
      load(f, row, e, tail);
      f.get(mxV).f32x4Sub().set(z);
      emitExp(f, k, z, z, t);
      store(f, row, e, tail, z);
      const acc = tail ? sumT : sumV;
      f.get(acc).get(z).f32x4Add().set(acc);
    },
    false,
  );
  total(f, sumV, sumT);
  f.f32x4Splat().set(sumV);
  forLanes(f, e, bytes4, bytes, (tail) => {
    load(f, row, e, tail);
    f.get(sumV).f32x4Div().set(z);
    store(f, row, e, tail, z);
  });
}

/** masked_softmax(out, x, bias, B, H, T, n, bias_bs) */
export function maskedSoftmaxFn(): Fn {
  const f = new Fn('masked_softmax', [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [out, x, bias, B, H, T, n, biasBs] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [b, h, t, e, bytes, bytes4, br] = [0, 0, 0, 0, 0, 0, 0].map(() => f.local(I32)) as number[];
  const [z, mxV, sumV, sumT, zero] = [0, 0, 0, 0, 0].map(() => f.local(V128)) as number[];
  const tmp: [number, number, number] = [f.local(V128), f.local(V128), f.local(V128)];
  const zs = Array.from({ length: EXP_BLOCK }, () => f.local(V128));
  const k = expConstants(f);
  f.get(n!).i32(4).mul().set(bytes!);
  f.get(n!).i32(-4).and().i32(4).mul().set(bytes4!);
  f.i32(0).set(b!);
  f.block().loop();
  f.get(b!).get(B).geS().brIf(1);
  f.i32(0).set(h!);
  f.block().loop();
  f.get(h!).get(H).geS().brIf(1);
  f.get(bias).get(b!).get(biasBs).mul().add().set(br!);
  f.i32(0).set(t!);
  f.block().loop();
  f.get(t!).get(T).geS().brIf(1);
  // out = x + bias, and its max.
  f.f32(-Infinity).f32x4Splat().set(mxV!);
  forLanes(f, e!, bytes4!, bytes!, (tail) => {
    load(f, x, e!, tail);
    load(f, br!, e!, tail);
    f.f32x4Add().set(z!);
    store(f, out, e!, tail, z!);
    f.get(mxV!).get(z!).f32x4Max().set(mxV!);
  });
  laneMax(f, mxV!);
  f.f32x4Splat().set(mxV!);
  emitExpNormalize(f, k, out, bytes4!, bytes!, {
    e: e!,
    z: z!,
    zs,
    mxV: mxV!,
    sumV: sumV!,
    sumT: sumT!,
    zero: zero!,
    t: tmp,
  });
  f.incBy(x, bytes!).incBy(out, bytes!).incBy(br!, bytes!).incConst(t!, 1);
  f.br(0);
  f.end().end();
  f.incConst(h!, 1);
  f.br(0);
  f.end().end();
  f.incConst(b!, 1);
  f.br(0);
  f.end().end();
  return f;
}

/** masked_softmax_grad(dx, dy, p, rows, n) */
export function maskedSoftmaxGradFn(): Fn {
  const f = new Fn('masked_softmax_grad', [I32, I32, I32, I32, I32]);
  const [dx, dy, p, rows, n] = [0, 1, 2, 3, 4];
  const [r, e, bytes, bytes4] = [0, 0, 0, 0].map(() => f.local(I32)) as number[];
  const [z, sumV, sumT, zero] = [0, 0, 0, 0].map(() => f.local(V128)) as number[];
  f.get(n).i32(4).mul().set(bytes!);
  f.get(n).i32(-4).and().i32(4).mul().set(bytes4!);
  f.i32(0).set(r!);
  f.block().loop();
  f.get(r!).get(rows).geS().brIf(1);
  f.get(zero!).set(sumV!).get(zero!).set(sumT!);
  forLanes(f, e!, bytes4!, bytes!, (tail) => {
    const acc = tail ? sumT! : sumV!;
    f.get(acc);
    load(f, dy, e!, tail);
    load(f, p, e!, tail);
    f.f32x4Mul().f32x4Add().set(acc);
  });
  total(f, sumV!, sumT!);
  f.f32x4Splat().set(sumV!);
  forLanes(f, e!, bytes4!, bytes!, (tail) => {
    load(f, dy, e!, tail);
    f.get(sumV!).f32x4Sub();
    load(f, p, e!, tail);
    f.f32x4Mul().set(z!);
    store(f, dx, e!, tail, z!);
  });
  f.incBy(dx, bytes!).incBy(dy, bytes!).incBy(p, bytes!).incConst(r!, 1);
  f.br(0);
  f.end().end();
  return f;
}

/** Pushes the f32x4 at byte `e` of `ptr`, or (tail) the float there in lane 0 and zeros elsewhere. */
function loadOrZero(f: Fn, ptr: number, e: number, tail: boolean): void {
  f.get(ptr).get(e).add();
  if (tail)
    f.raw(0xfd, 0x5c, 2, 0); // v128.load32_zero
  else f.v128Load();
}

/** Pushes the address of float `index` (an i32 local) of the row at `base` (an i32 local). */
function floatAt(f: Fn, base: number, index: number): Fn {
  return f.get(base).get(index).i32(4).mul().add();
}

/** Pushes the f32 sum of a v128 local's lanes, (l0 + l1) + (l2 + l3). */
function hsum(f: Fn, vec: number): void {
  f.get(vec).f32x4ExtractLane(0).get(vec).f32x4ExtractLane(1).f32Add();
  f.get(vec).f32x4ExtractLane(2).get(vec).f32x4ExtractLane(3).f32Add();
  f.f32Add();
}

/**
 * i8x16.shuffle of the two v128 on the stack by f32 lane (0-3 the first, 4-7 the second). The patterns
 * used here, [x_i, x_j, y_k, y_l], are one shufps each on x86.
 */
function shuffle32(f: Fn, lanes: [number, number, number, number]): void {
  f.raw(0xfd, 0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
}

/** Pushes [x0 + x1, x2 + x3, y0 + y1, y2 + y3] of the v128 locals x and y. */
function pairSums(f: Fn, x: number, y: number): void {
  f.get(x).get(y);
  shuffle32(f, [0, 2, 4, 6]);
  f.get(x).get(y);
  shuffle32(f, [1, 3, 5, 7]);
  f.f32x4Add();
}

/**
 * Sets the v128 local `dst` to the lane sums of the v128 locals a, b, c, d: lane i holds the i-th's
 * (l0 + l1) + (l2 + l3), the same additions in the same order as {@link hsum}. `t` is scratch.
 */
function hsum4(f: Fn, [a, b, c, d]: number[], dst: number, t: number): void {
  pairSums(f, a!, b!); // [a0 + a1, a2 + a3, b0 + b1, b2 + b3]
  f.set(t);
  pairSums(f, c!, d!); // [c0 + c1, c2 + c3, d0 + d1, d2 + d3]
  f.set(dst);
  pairSums(f, t, dst); // [(a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3), ...]
  f.set(dst);
}

/** Keys whose scores are formed together (one load of each f32x4 of q serves them all); a multiple of 4. */
const KEY_BLOCK = 4;
/** f32x4 columns of the output accumulated together (one load of each probability serves them all). */
const COL_BLOCK = 4;

/** prefix_attention(out, q, k, v, bias, scores, B, Hkv, R, len, cap, dh, scale, bias_bs, bias_rs, has_bias) */
export function prefixAttentionFn(): Fn {
  const params: ValType[] = [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, I32, I32, I32];
  const f = new Fn('prefix_attention', params);
  const [out, q, k, v, bias, scores, B, Hkv, R, len, cap, dh, scale, biasBs, biasRs, hasBias] = params.map(
    (_, i) => i,
  ) as number[];
  const i32 = (n: number) => Array.from({ length: n }, () => f.local(I32));
  const v128 = (n: number) => Array.from({ length: n }, () => f.local(V128));
  const [b, h, r, j, e, br, vp, dhb, dh4b, headb, lenb, len4b] = i32(12) as number[];
  const kps = i32(KEY_BLOCK);
  const [s, mx] = [f.local(F32), f.local(F32)];
  const [z, qv, mxV, sumV, sumT, zero, scaleV] = v128(7) as number[];
  const accs = v128(Math.max(KEY_BLOCK, COL_BLOCK, EXP_BLOCK));
  const tmp: [number, number, number] = [f.local(V128), f.local(V128), f.local(V128)];
  const kc = expConstants(f);
  f.get(scale!).f32x4Splat().set(scaleV!);
  f.get(dh!).i32(4).mul().set(dhb!);
  f.get(dh!).i32(-4).and().i32(4).mul().set(dh4b!);
  f.get(cap!).get(dhb!).mul().set(headb!);
  f.get(len!).i32(4).mul().set(lenb!);
  f.get(len!).i32(-4).and().i32(4).mul().set(len4b!);
  f.i32(0).set(b!);
  f.block().loop();
  f.get(b!).get(B!).geS().brIf(1);
  f.i32(0).set(h!);
  f.block().loop();
  f.get(h!).get(Hkv!).geS().brIf(1);
  f.i32(0).set(r!);
  f.block().loop();
  f.get(r!).get(R!).geS().brIf(1);
  f.get(bias!).get(b!).get(biasBs!).mul().add().get(r!).get(biasRs!).mul().add().set(br!);

  // Pass 1: scores[j] = (q . k_j) * scale + bias[j], and their max; keys in blocks of KEY_BLOCK, then
  // one at a time. The dot products run over f32x4 of dh, then its tail one float (in lane 0) at a time.
  // A block finishes 4 keys per f32x4: their lane sums by shuffles (hsum4), one multiply by the splatted
  // scale, one add of the 4 bias floats, one store, and a running f32x4.pmax (one maxps; f32x4.max and
  // f32.max cost several instructions each for their NaN and zero-sign rules) whose lanes are reduced with
  // f32.max after the loop, with the single keys' max (those keep the scalar hsum and f32.max). Bit for bit
  // the same output: the pmax maximum equals the max except maybe in the sign of a zero maximum, and
  // s - (+0) and s - (-0) differ only for s = -0, where exp gives 1 either way. A NaN score may be left out
  // of the max, but its exp is NaN, so is the sum, and so is every output.
  f.f32(-Infinity).set(mx);
  f.get(mx).f32x4Splat().set(mxV!);
  f.get(k!).set(kps[0]!);
  f.i32(0).set(j!);
  for (const n of [KEY_BLOCK, 1]) {
    f.block().loop();
    f.get(j!)
      .i32(n - 1)
      .add()
      .get(len!)
      .geS()
      .brIf(1);
    for (let i = 1; i < n; i++)
      f.get(kps[i - 1]!)
        .get(dhb!)
        .add()
        .set(kps[i]!);
    for (let i = 0; i < n; i++) f.get(zero!).set(accs[i]!);
    forLanes(f, e!, dh4b!, dhb!, (tail) => {
      loadOrZero(f, q!, e!, tail);
      f.set(qv!);
      for (let i = 0; i < n; i++) {
        f.get(accs[i]!).get(qv!);
        loadOrZero(f, kps[i]!, e!, tail);
        f.f32x4Mul().f32x4Add().set(accs[i]!);
      }
    });
    for (let g = 0; g + 4 <= n; g += 4) {
      hsum4(f, accs.slice(g, g + 4), z!, tmp[0]);
      f.get(z!).get(scaleV!).f32x4Mul().set(z!);
      f.get(hasBias!).if();
      f.get(z!);
      floatAt(f, br!, j!)
        .v128Load(4 * g)
        .f32x4Add()
        .set(z!);
      f.end();
      floatAt(f, scores!, j!)
        .get(z!)
        .v128Store(4 * g);
      f.get(mxV!).get(z!).raw(0xfd, 0xeb, 0x01).set(mxV!); // f32x4.pmax
    }
    for (let i = n - (n % 4); i < n; i++) {
      hsum(f, accs[i]!);
      f.get(scale!).f32Mul().set(s);
      f.get(hasBias!).if();
      f.get(s);
      floatAt(f, br!, j!)
        .f32Load(4 * i)
        .f32Add()
        .set(s);
      f.end();
      floatAt(f, scores!, j!)
        .get(s)
        .f32Store(4 * i);
      f.get(mx).get(s).f32Max().set(mx);
    }
    f.get(kps[n - 1]!)
      .get(dhb!)
      .add()
      .set(kps[0]!);
    f.incConst(j!, n);
    f.br(0);
    f.end().end();
  }

  laneMax(f, mxV!);
  f.get(mx).f32Max().set(mx);

  // Pass 2: scores = exp(scores - max), normalized.
  f.get(mx).f32x4Splat().set(mxV!);
  emitExpNormalize(f, kc, scores!, len4b!, lenb!, {
    e: j!,
    z: z!,
    zs: accs.slice(0, EXP_BLOCK),
    mxV: mxV!,
    sumV: sumV!,
    sumT: sumT!,
    zero: zero!,
    t: tmp,
  });

  // Pass 3: out = sum_j p_j v_j in key order: COL_BLOCK f32x4 of the output at a time, then single f32x4,
  // then the tail one float at a time.
  f.i32(0).set(e!);
  f.block().loop();
  f.get(e!)
    .i32(16 * COL_BLOCK)
    .add()
    .get(dh4b!)
    .gtS()
    .brIf(1);
  for (let i = 0; i < COL_BLOCK; i++) f.get(zero!).set(accs[i]!);
  f.get(v!).get(e!).add().set(vp!);
  f.i32(0).set(j!); // bytes into scores
  f.block().loop();
  f.get(j!).get(lenb!).geS().brIf(1);
  f.get(scores!).get(j!).add().v128Load32Splat().set(qv!);
  for (let i = 0; i < COL_BLOCK; i++) {
    f.get(accs[i]!)
      .get(qv!)
      .get(vp!)
      .v128Load(16 * i)
      .f32x4Mul()
      .f32x4Add()
      .set(accs[i]!);
  }
  f.incBy(vp!, dhb!).incConst(j!, 4);
  f.br(0);
  f.end().end();
  for (let i = 0; i < COL_BLOCK; i++)
    f.get(out!)
      .get(e!)
      .add()
      .get(accs[i]!)
      .v128Store(16 * i);
  f.incConst(e!, 16 * COL_BLOCK);
  f.br(0);
  f.end().end();
  forLanes(
    f,
    e!,
    dh4b!,
    dhb!,
    (tail) => {
      const acc = accs[0]!;
      f.get(zero!).set(acc);
      f.get(v!).get(e!).add().set(vp!);
      f.i32(0).set(j!);
      f.block().loop();
      f.get(j!).get(lenb!).geS().brIf(1);
      f.get(acc);
      f.get(scores!).get(j!).add().v128Load32Splat();
      if (tail) f.get(vp!).v128Load32Splat();
      else f.get(vp!).v128Load();
      f.f32x4Mul().f32x4Add().set(acc);
      f.incBy(vp!, dhb!).incConst(j!, 4);
      f.br(0);
      f.end().end();
      store(f, out!, e!, tail, acc);
    },
    false,
  );

  f.incBy(q!, dhb!).incBy(out!, dhb!).incConst(r!, 1);
  f.br(0);
  f.end().end();
  f.incBy(k!, headb!).incBy(v!, headb!).incConst(h!, 1);
  f.br(0);
  f.end().end();
  f.incConst(b!, 1);
  f.br(0);
  f.end().end();
  return f;
}
