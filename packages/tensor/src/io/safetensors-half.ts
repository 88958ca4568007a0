/**
 * float32 -> float16 / bfloat16 narrowing for the safetensors writer (the reader widens in safetensors.ts).
 * Both round to nearest, ties to even, like PyTorch's `.half()` / `.bfloat16()`: values past the largest
 * finite half overflow to ±Inf, NaN stays NaN (quiet), and float16 produces subnormals down to 2^-24.
 */

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The IEEE 754 binary16 bit pattern nearest to `x` (after rounding `x` to float32), ties to even. */
export function float32ToFloat16Bits(x: number): number {
  F32[0] = x;
  return f32BitsToF16(U32[0]!);
}

/** The bfloat16 bit pattern (top 16 bits of a float32) nearest to `x` (after rounding to float32), ties to even. */
export function float32ToBfloat16Bits(x: number): number {
  F32[0] = x;
  return f32BitsToBf16(U32[0]!);
}

/** The float32 value of a bfloat16 bit pattern (exact: bfloat16 is a truncated float32). */
export function bfloat16ToFloat32(h: number): number {
  U32[0] = (h & 0xffff) << 16;
  return F32[0]!;
}

function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant === 0 ? 0x7c00 : 0x7e00); // Inf, or a quiet NaN
  const e = exp - 112; // float16 biased exponent (127 - 15 = 112)
  if (e >= 31) return sign | 0x7c00; // too large even before rounding
  if (e <= 0) {
    // float16 subnormal (or zero): the value in units of 2^-24 is (1.mant * 2^23) >> (126 - exp).
    const shift = 126 - exp;
    if (shift > 25) return sign; // below half the smallest subnormal: rounds to ±0
    const full = mant | 0x800000;
    let r = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++; // may carry into the smallest normal: correct
    return sign | r;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent may give Inf: correct
  return sign | h;
}

function f32BitsToBf16(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  // Adding 0x7fff plus the kept lsb rounds to nearest even; a carry into the exponent may give Inf: correct.
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 array -> float16 or bfloat16 bit patterns. */
export function narrowFloat32(data: Float32Array, dtype: 'F16' | 'BF16'): Uint16Array {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  const f = dtype === 'F16' ? f32BitsToF16 : f32BitsToBf16;
  for (let i = 0; i < bits.length; i++) out[i] = f(bits[i]!);
  return out;
}
