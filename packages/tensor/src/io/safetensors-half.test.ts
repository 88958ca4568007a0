import { describe, expect, it } from 'vitest';
import { float16ToFloat32, parseSafetensors, serializeSafetensors } from './safetensors.js';
import { bfloat16ToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from './safetensors-half.js';

// [float32 bits, float16 bits] computed with numpy 2.4 (`np.float32(x).astype(np.float16)`), an independent
// round-to-nearest-even implementation: special values, overflow at 65520, subnormal ties, random values.
const NUMPY_F16: [number, number][] = [
  [0x00000000, 0x0000],
  [0x80000000, 0x8000],
  [0x3f800000, 0x3c00],
  [0xbf800000, 0xbc00],
  [0x3dcccccd, 0x2e66],
  [0x3eaaaaab, 0x3555],
  [0x477fe000, 0x7bff],
  [0x477feffd, 0x7bff],
  [0x477ff000, 0x7c00],
  [0x47800000, 0x7c00],
  [0x49742400, 0x7c00],
  [0xc9742400, 0xfc00],
  [0x33800000, 0x0001],
  [0x33000000, 0x0000],
  [0x33000001, 0x0001],
  [0x33c00000, 0x0002],
  [0x38800000, 0x0400],
  [0x387fe000, 0x0400],
  [0x3f801000, 0x3c00],
  [0x3f803000, 0x3c02],
  [0x322bcc77, 0x0000],
  [0x387fda40, 0x03ff],
  [0x40490fdb, 0x4248],
  [0xb627c5ac, 0x802a],
  [0x7f800000, 0x7c00],
  [0xff800000, 0xfc00],
  [0x89e00142, 0x8000],
  [0xd2e56e6e, 0xfc00],
  [0xc450f069, 0xe288],
  [0x876b745f, 0x8000],
  [0x76eaa1d3, 0x7c00],
  [0xb37f6e90, 0x8001],
  [0x36d3a7e4, 0x006a],
  [0x42cfdeee, 0x567f],
  [0x4124f28e, 0x4928],
  [0x3e3a25bf, 0x31d1],
  [0xb4cecc07, 0x8006],
  [0x36b69877, 0x005b],
  [0xc06a61c3, 0xc353],
  [0x477ad0bd, 0x7bd7],
  [0x47849cf3, 0x7c00],
  [0x46b29aad, 0x7595],
  [0xc737f9a8, 0xf9c0],
];

// [float32 bits, bfloat16 bits] computed in Python with exact fractions (nearest, ties to the even pattern).
const EXACT_BF16: [number, number][] = [
  [0x3f800000, 0x3f80],
  [0x3dcccccd, 0x3dcd],
  [0x40490fdb, 0x4049],
  [0x3f808000, 0x3f80],
  [0x3f818000, 0x3f82],
  [0x7f7f0000, 0x7f7f],
  [0x800116c2, 0x8001],
  [0x00000001, 0x0000],
  [0x477fe000, 0x4780],
  [0x241f28dd, 0x241f],
  [0xd8c743f8, 0xd8c7],
  [0xecc11ebe, 0xecc1],
  [0x35851242, 0x3585],
  [0xee42bb33, 0xee43],
  [0x4f00cbf6, 0x4f01],
  [0xc7d3b3dd, 0xc7d4],
  [0x44ab972d, 0x44ac],
  // overflow: above the midpoint between the largest bfloat16 and 2^128, and at it (odd lsb: up)
  [0x7f7fffff, 0x7f80],
  [0x7f7f8000, 0x7f80],
  [0xff7fffff, 0xff80],
  [0x7f800000, 0x7f80],
  [0xff800000, 0xff80],
  [0x80000000, 0x8000],
];

function fromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

const hex = (n: number): string => '0x' + n.toString(16).padStart(4, '0');

describe('float32 -> float16 / bfloat16', () => {
  it('float16 matches numpy on special values, overflow, subnormal ties and random values', () => {
    const got = NUMPY_F16.map(([b]) => hex(float32ToFloat16Bits(fromBits(b))));
    expect(got).toEqual(NUMPY_F16.map(([, h]) => hex(h)));
  });

  it('bfloat16 matches exact rounding, including overflow to Inf', () => {
    const got = EXACT_BF16.map(([b]) => hex(float32ToBfloat16Bits(fromBits(b))));
    expect(got).toEqual(EXACT_BF16.map(([, h]) => hex(h)));
  });

  it('NaN stays NaN (quiet) in both', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xffc00001]) {
      expect(Number.isNaN(float16ToFloat32(float32ToFloat16Bits(fromBits(bits))))).toBe(true);
      expect(Number.isNaN(bfloat16ToFloat32(float32ToBfloat16Bits(fromBits(bits))))).toBe(true);
    }
    expect(float32ToBfloat16Bits(fromBits(0x7f800001))).toBe(0x7fc0);
  });

  it('float16 picks the nearest half (ties to even) for 20k random floats, checked by search over all halves', () => {
    // Reference: every non-negative finite half (and 65536 standing for Inf), decoded by the reader.
    const values: number[] = [];
    for (let h = 0; h < 0x7c00; h++) values.push(float16ToFloat32(h));
    values.push(65536);
    let seed = 12345;
    const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 20000; i++) {
      const x = Math.fround((rand() - 0.5) * 2 ** Math.floor(rand() * 44 - 28));
      const a = Math.abs(x);
      let lo = 0;
      let hi = values.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (values[mid]! <= a) lo = mid;
        else hi = mid;
      }
      const dLo = a - values[lo]!;
      const dHi = values[hi]! - a;
      const want = a >= 65536 ? 0x7c00 : dLo < dHi || (dLo === dHi && lo % 2 === 0) ? lo : hi;
      const got = float32ToFloat16Bits(x);
      if ((got & 0x7fff) !== want || (got & 0x8000) !== (x < 0 || Object.is(x, -0) ? 0x8000 : 0)) {
        throw new Error(`x=${x}: got ${hex(got)}, want ${hex(want)}`);
      }
    }
  });

  it('round trip: every finite half and bfloat16 pattern survives widening then narrowing', () => {
    const bad: string[] = []; // one expect at the end: 2 x 65536 expects are slow
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) !== 0x7c00 && float32ToFloat16Bits(float16ToFloat32(h)) !== h)
        bad.push(`F16 ${hex(h)}`);
      if ((h & 0x7f80) !== 0x7f80 && float32ToBfloat16Bits(bfloat16ToFloat32(h)) !== h)
        bad.push(`BF16 ${hex(h)}`);
    }
    expect(bad).toEqual([]);
  });
});

describe('serializeSafetensors with { dtype }', () => {
  const data = Float32Array.from([1, 0.1, -65504, 1e-7, 70000]);
  const t = {
    w: { dtype: 'float32' as const, shape: [5], data },
    ids: { dtype: 'int32' as const, shape: [1], data: Int32Array.from([7]) },
  };

  it.each(['F16', 'BF16'] as const)(
    'stores float32 tensors as %s (2 bytes each); int32 stays I32',
    (dtype) => {
      const bytes = serializeSafetensors(t, undefined, { dtype });
      const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
      expect(header.w).toEqual({ dtype, shape: [5], data_offsets: [4, 14] });
      expect(header.ids.dtype).toBe('I32');
      expect(bytes.length).toBe(8 + headerLen + 14);
      const narrow = dtype === 'F16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
      const widen = dtype === 'F16' ? float16ToFloat32 : bfloat16ToFloat32;
      const back = parseSafetensors(bytes).tensors.get('w')!;
      expect([...back.data]).toEqual([...data].map((x) => Math.fround(widen(narrow(x)))));
      expect(back.data[4]).toBe(dtype === 'F16' ? Infinity : 70144); // 70000 overflows float16
    },
  );

  it('rejects an unknown storage dtype', () => {
    expect(() => serializeSafetensors(t, undefined, { dtype: 'F8' as never })).toThrow(
      /"F8".*'F32', 'F16' or 'BF16'/,
    );
  });
});
