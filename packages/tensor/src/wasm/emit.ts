/**
 * A minimal WebAssembly binary writer: enough to assemble the few SIMD kernels of `kernel-module.ts`
 * at run time, so the package ships no prebuilt `.wasm` file and needs no wasm toolchain to build.
 *
 * Only what those kernels use is here: i32/f32/v128 locals (f64/i64 ones for the host sampler's raw code), structured control flow, loads and
 * stores, i32 arithmetic, f32 and f32x4 arithmetic (with splat and lane extraction), and one
 * imported memory.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export const F64 = 0x7c;
export const I64 = 0x7e;
export type ValType = typeof I32 | typeof F32 | typeof V128 | typeof F64 | typeof I64;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function str(s: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(s));
  return [...uleb(bytes.length), ...bytes];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** One function body under construction. Methods append instructions and return `this`. */
export class Fn {
  readonly code: number[] = [];
  private readonly extra: ValType[] = [];

  constructor(
    readonly name: string,
    readonly params: ValType[],
    readonly exported = true,
  ) {}

  /** Declares a local; returns its index. Locals start zeroed. */
  local(type: ValType): number {
    this.extra.push(type);
    return this.params.length + this.extra.length - 1;
  }

  /** Appends raw bytes. */
  raw(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }

  get(i: number): this {
    return this.raw(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.raw(0x21, ...uleb(i));
  }
  tee(i: number): this {
    return this.raw(0x22, ...uleb(i));
  }
  i32(v: number): this {
    return this.raw(0x41, ...sleb(v | 0));
  }
  f32(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return this.raw(0x43, ...b);
  }
  f64(v: number): this {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    return this.raw(0x44, ...b);
  }

  add(): this {
    return this.raw(0x6a);
  }
  sub(): this {
    return this.raw(0x6b);
  }
  mul(): this {
    return this.raw(0x6c);
  }
  eq(): this {
    return this.raw(0x46);
  }
  ne(): this {
    return this.raw(0x47);
  }
  eqz(): this {
    return this.raw(0x45);
  }
  ltS(): this {
    return this.raw(0x48);
  }
  gtS(): this {
    return this.raw(0x4a);
  }
  geS(): this {
    return this.raw(0x4e);
  }
  and(): this {
    return this.raw(0x71);
  }
  ltU(): this {
    return this.raw(0x49);
  }
  select(): this {
    return this.raw(0x1b);
  }
  drop(): this {
    return this.raw(0x1a);
  }

  /** local[i] += delta (an i32 local and another local's value). */
  incBy(i: number, deltaLocal: number): this {
    return this.get(i).get(deltaLocal).add().set(i);
  }
  /** local[i] += constant. */
  incConst(i: number, delta: number): this {
    return this.get(i).i32(delta).add().set(i);
  }

  block(): this {
    return this.raw(0x02, 0x40);
  }
  loop(): this {
    return this.raw(0x03, 0x40);
  }
  if(): this {
    return this.raw(0x04, 0x40);
  }
  else(): this {
    return this.raw(0x05);
  }
  end(): this {
    return this.raw(0x0b);
  }
  br(depth: number): this {
    return this.raw(0x0c, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.raw(0x0d, ...uleb(depth));
  }
  call(index: number): this {
    return this.raw(0x10, ...uleb(index));
  }

  f32Load(offset = 0): this {
    return this.raw(0x2a, 2, ...uleb(offset));
  }
  f32Store(offset = 0): this {
    return this.raw(0x38, 2, ...uleb(offset));
  }
  f32Add(): this {
    return this.raw(0x92);
  }
  f32Mul(): this {
    return this.raw(0x94);
  }
  i32Load(offset = 0): this {
    return this.raw(0x28, 2, ...uleb(offset));
  }
  i32Store(offset = 0): this {
    return this.raw(0x36, 2, ...uleb(offset));
  }

  /** A SIMD instruction (0xfd prefix) by its opcode, then its immediates. */
  simd(op: number, ...rest: number[]): this {
    return this.raw(0xfd, ...uleb(op), ...rest);
  }
  v128Load(offset = 0): this {
    return this.simd(0x00, 4, ...uleb(offset));
  }
  v128Load32Splat(offset = 0): this {
    return this.simd(0x09, 2, ...uleb(offset));
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b, 4, ...uleb(offset));
  }
  f32x4Add(): this {
    return this.simd(0xe4);
  }
  /** f32x4.splat: [f32] -> [v128]. */
  f32x4Splat(): this {
    return this.simd(0x13);
  }
  /** f32x4.extract_lane: [v128] -> [f32]. */
  f32x4ExtractLane(lane: number): this {
    return this.simd(0x1f, lane);
  }
  f32x4Mul(): this {
    return this.simd(0xe6);
  }
  f32x4Sub(): this {
    return this.simd(0xe5);
  }
  f32x4Div(): this {
    return this.simd(0xe7);
  }
  f32x4Min(): this {
    return this.simd(0xe8);
  }
  f32x4Max(): this {
    return this.simd(0xe9);
  }
  /** f32x4.nearest (round half to even). */
  f32x4Nearest(): this {
    return this.simd(0x6a);
  }
  /** i32x4.trunc_sat_f32x4_s. */
  i32x4TruncSatF32x4(): this {
    return this.simd(0xf8);
  }
  /** i32x4.shl: [v128, i32] -> [v128]. */
  i32x4Shl(): this {
    return this.simd(0xab);
  }
  f32Sub(): this {
    return this.raw(0x93);
  }
  f32Div(): this {
    return this.raw(0x95);
  }
  f32Sqrt(): this {
    return this.raw(0x91);
  }
  f32Max(): this {
    return this.raw(0x97);
  }
  i32x4Add(): this {
    return this.simd(0xae);
  }
  /** memory.copy (bulk memory): [dst, src, length] -> []. */
  memoryCopy(): this {
    return this.raw(0xfc, ...uleb(10), 0x00, 0x00);
  }
  /** memory.fill (bulk memory): [dst, value, length] -> []. */
  memoryFill(): this {
    return this.raw(0xfc, ...uleb(11), 0x00);
  }

  /** The function body as the code section wants it: local declarations, code, end. */
  body(): number[] {
    const groups: number[][] = [];
    for (const t of this.extra) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]!++;
      else groups.push([1, t]);
    }
    const bytes = [
      ...uleb(groups.length),
      ...groups.flatMap(([n, t]) => [...uleb(n!), t!]),
      ...this.code,
      0x0b,
    ];
    return [...uleb(bytes.length), ...bytes];
  }
}

/**
 * Assembles a module that imports its memory as `env.memory` and exports each function with
 * `exported` set under its name. All functions return nothing.
 */
export function assemble(fns: Fn[], memory: { shared: boolean }): Uint8Array<ArrayBuffer> {
  const sigs: string[] = [];
  const typeOf = fns.map((f) => {
    const key = f.params.join(',');
    let i = sigs.indexOf(key);
    if (i < 0) i = sigs.push(key) - 1;
    return i;
  });
  const types = sigs.map((key) => {
    const params = key === '' ? [] : key.split(',').map(Number);
    return [0x60, ...uleb(params.length), ...params, 0x00];
  });
  // Memory limits: min 0; shared memories must declare a maximum (use the 4 GiB wasm32 limit).
  const limits = memory.shared ? [0x03, 0x00, ...uleb(65536)] : [0x00, 0x00];
  const imports = [[...str('env'), ...str('memory'), 0x02, ...limits]];
  const exports = fns
    .map((f, i) => (f.exported ? [...str(f.name), 0x00, ...uleb(i)] : null))
    .filter((e): e is number[] => e !== null);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(typeOf.map((t) => uleb(t)))),
    ...section(7, vec(exports)),
    ...section(10, vec(fns.map((f) => f.body()))),
  ]);
}
