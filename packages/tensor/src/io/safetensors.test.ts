import * as tf from '@tensorflow/tfjs-core';
import fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '../testing/index.js';
import {
  float16ToFloat32,
  loadTensors,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  saveTensors,
  serializeSafetensors,
  writeSafetensors,
  type TensorData,
} from './safetensors.js';

/** Builds a safetensors file by hand: u64 LE length, header text (+ `pad` spaces), then `data`. */
function build(header: unknown, data: ArrayLike<number> = [], pad = 0): Uint8Array {
  const text = (typeof header === 'string' ? header : JSON.stringify(header)) + ' '.repeat(pad);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  let n = json.length;
  for (let i = 0; i < 8; i++) {
    out[i] = n & 0xff; // little-endian, byte by byte
    n = Math.floor(n / 256);
  }
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function u16le(values: number[]): number[] {
  return values.flatMap((v) => [v & 0xff, v >> 8]);
}

function f32(values: number[]): TensorData {
  return { dtype: 'float32', shape: [values.length], data: Float32Array.from(values) };
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'relign-st-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('parseSafetensors: hand-built files', () => {
  it('reads a file whose bytes are written out by hand', () => {
    const header = {
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'I32', shape: [], data_offsets: [8, 12] },
    };
    // 1.0f = 3F800000, -2.0f = C0000000, int32 7 and -1, little-endian.
    const data = [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x07, 0x00, 0x00, 0x00];
    const f = parseSafetensors(build(header, data, 3), 'hand.safetensors');
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.tensors.keys()]).toEqual(['a', 'b']);
    expect(f.tensors.get('a')).toEqual({ dtype: 'float32', shape: [2], data: Float32Array.from([1, -2]) });
    expect(f.tensors.get('b')).toEqual({ dtype: 'int32', shape: [], data: Int32Array.from([7]) });
  });

  it('decodes F16 bit patterns exactly (normals, subnormals, ±0, ±Inf, NaN)', () => {
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555];
    const expected = [
      1,
      -2,
      65504,
      2 ** -24,
      1023 * 2 ** -24,
      2 ** -14,
      Infinity,
      -Infinity,
      NaN,
      -0,
      Math.fround(0x155 / 1024 / 4 + 0.25), // 0x3555: exp -2, mantissa 0x155 -> 0.333251953125
    ];
    const header = { h: { dtype: 'F16', shape: [bits.length], data_offsets: [0, 2 * bits.length] } };
    const t = parseSafetensors(build(header, u16le(bits))).tensors.get('h')!;
    expect(t.dtype).toBe('float32');
    expect([...t.data]).toEqual(expected);
    expect(Object.is(t.data[9], -0)).toBe(true);
    expect(t.data[10]).toBe(0.333251953125);
    bits.forEach((b, i) => expect(float16ToFloat32(b)).toEqual(expected[i]));
  });

  it('decodes BF16 bit patterns as the top half of a float32', () => {
    const bits = [0x3f80, 0xc000, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x4049];
    const expected = [1, -2, Infinity, -Infinity, NaN, 2 ** -133, 3.140625];
    const header = { x: { dtype: 'BF16', shape: [bits.length], data_offsets: [0, 14] } };
    expect([...parseSafetensors(build(header, u16le(bits))).tensors.get('x')!.data]).toEqual(expected);
  });

  it('converts F64, I64, I16, I8, U8 and BOOL', () => {
    const buf = new ArrayBuffer(16 + 24 + 4 + 2 + 2 + 3);
    const v = new DataView(buf);
    v.setFloat64(0, 0.1, true);
    v.setFloat64(8, -1e300, true);
    v.setBigInt64(16, -1n, true);
    v.setBigInt64(24, 2147483647n, true);
    v.setBigInt64(32, -2147483648n, true);
    v.setInt16(40, -300, true);
    v.setInt16(42, 32767, true);
    v.setInt8(44, -128);
    v.setInt8(45, 127);
    v.setUint8(46, 255);
    v.setUint8(47, 0);
    v.setUint8(48, 1);
    v.setUint8(49, 0);
    v.setUint8(50, 2); // a non-canonical true
    const header = {
      d: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
      l: { dtype: 'I64', shape: [3], data_offsets: [16, 40] },
      s: { dtype: 'I16', shape: [2], data_offsets: [40, 44] },
      c: { dtype: 'I8', shape: [2], data_offsets: [44, 46] },
      u: { dtype: 'U8', shape: [2], data_offsets: [46, 48] },
      b: { dtype: 'BOOL', shape: [3], data_offsets: [48, 51] },
    };
    const t = parseSafetensors(build(header, new Uint8Array(buf))).tensors;
    expect(t.get('d')).toEqual({ dtype: 'float32', shape: [2], data: Float32Array.from([0.1, -Infinity]) });
    expect(t.get('l')).toEqual({
      dtype: 'int32',
      shape: [3],
      data: Int32Array.from([-1, 2147483647, -2147483648]),
    });
    expect([...t.get('s')!.data]).toEqual([-300, 32767]);
    expect([...t.get('c')!.data]).toEqual([-128, 127]);
    expect([...t.get('u')!.data]).toEqual([255, 0]);
    expect(t.get('b')).toEqual({ dtype: 'int32', shape: [3], data: Int32Array.from([1, 0, 1]) });
  });

  it('rejects I64 values outside int32, naming the tensor and element', () => {
    const buf = new ArrayBuffer(16);
    new DataView(buf).setBigInt64(8, 2147483648n, true);
    const header = { ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } };
    const msg = errorOf(() => parseSafetensors(build(header, new Uint8Array(buf)), 'ids.safetensors'));
    expect(msg).toContain('ids.safetensors');
    expect(msg).toContain('"ids"');
    expect(msg).toContain('element 1 = 2147483648');
    expect(msg).toContain('int32');
  });

  it('reads unaligned data offsets for every dtype (copy, not view)', () => {
    // Header padded so the data buffer starts at an odd file offset, and tensors sit at odd offsets.
    const buf = new ArrayBuffer(1 + 8 + 4 + 8 + 2);
    const v = new DataView(buf);
    v.setFloat32(1, 1.5, true);
    v.setFloat32(5, -0.25, true);
    v.setInt32(9, -123456, true);
    v.setBigInt64(13, -42n, true);
    v.setUint16(21, 0x3c00, true);
    const header = {
      f: { dtype: 'F32', shape: [2], data_offsets: [1, 9] },
      i: { dtype: 'I32', shape: [1], data_offsets: [9, 13] },
      l: { dtype: 'I64', shape: [1], data_offsets: [13, 21] },
      h: { dtype: 'F16', shape: [1], data_offsets: [21, 23] },
    };
    const text = JSON.stringify(header);
    const pad = (8 + text.length) % 2 === 0 ? 1 : 0; // make 8 + N odd
    const bytes = build(header, new Uint8Array(buf), pad);
    expect((8 + text.length + pad) % 2).toBe(1);
    const t = parseSafetensors(bytes).tensors;
    expect([...t.get('f')!.data]).toEqual([1.5, -0.25]);
    expect([...t.get('i')!.data]).toEqual([-123456]);
    expect([...t.get('l')!.data]).toEqual([-42]);
    expect([...t.get('h')!.data]).toEqual([1]);
    // Also when the input array itself starts at an odd byteOffset in a larger buffer.
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expect([...parseSafetensors(shifted.subarray(3)).tensors.get('f')!.data]).toEqual([1.5, -0.25]);
  });

  it('tolerates gaps (unused bytes) between tensors and ignores extra entry fields', () => {
    const header = {
      a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
      b: { dtype: 'U8', shape: [1], data_offsets: [5, 6], extra: true },
    };
    const t = parseSafetensors(build(header, [9, 0, 0, 0, 0, 8, 0, 0])).tensors;
    expect([...t.get('a')!.data, ...t.get('b')!.data]).toEqual([9, 8]);
  });
});

describe('parseSafetensors: corrupt files', () => {
  const good = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const goodData = new Array<number>(8).fill(0);
  const cases: [string, () => Uint8Array, string[]][] = [
    ['shorter than 8 bytes', () => new Uint8Array(5), ['5 bytes', '8-byte', 'truncated']],
    ['header length zero', () => new Uint8Array(16), ['header length is 0']],
    [
      'header length larger than the file',
      () => {
        const b = build(good, goodData);
        new DataView(b.buffer).setBigUint64(0, 1000n, true);
        return b;
      },
      ['header length 1000', 'truncated'],
    ],
    [
      'absurd header length',
      () => {
        const b = build(good, goodData);
        new DataView(b.buffer).setBigUint64(0, 2n ** 62n, true);
        return b;
      },
      ['absurd'],
    ],
    ['header not JSON', () => build('{"w": {"dtype": "F32",', goodData), ['not valid UTF-8 JSON']],
    ['header JSON an array', () => build([1, 2], goodData), ['not an object']],
    [
      'unknown dtype',
      () => build({ w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, goodData),
      ['"w"', 'F8_E4M3', 'supported: F64, F32'],
    ],
    [
      'negative shape',
      () => build({ w: { dtype: 'F32', shape: [-1, 2], data_offsets: [0, 8] } }, goodData),
      ['"w"', 'shape [-1,2]', 'non-negative integers'],
    ],
    [
      'fractional shape',
      () => build({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, goodData),
      ['"w"', 'shape'],
    ],
    [
      'begin > end',
      () => build({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, goodData),
      ['"w"', 'data_offsets [8,0]', 'begin <= end'],
    ],
    [
      'three offsets',
      () => build({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4, 8] } }, goodData),
      ['"w"', 'data_offsets'],
    ],
    [
      'wrong byte length',
      () => build({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, goodData),
      ['"w"', 'span 8 bytes', '3 x 4 = 12 bytes'],
    ],
    [
      'overlapping tensors',
      () =>
        build(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
          },
          goodData,
        ),
      ['"b"', '"a"', 'overlap'],
    ],
    [
      'offsets past the data buffer',
      () => build({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, goodData),
      ['"w"', 'truncated', '(8 bytes)'],
    ],
    [
      'metadata value not a string',
      () => build({ __metadata__: { step: 3 }, ...good }, goodData),
      ['__metadata__', '"step"', 'must be strings'],
    ],
    ['metadata not an object', () => build({ __metadata__: 'x', ...good }, goodData), ['__metadata__']],
    ['entry not an object', () => build({ w: [1] }, goodData), ['"w"', 'entry must be an object']],
    [
      'a key twice (JSON.parse would keep the last)',
      () =>
        build(
          '{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "x": {"dtype": "F32", "shape": [0], ' +
            '"data_offsets": [8, 8]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
          goodData,
        ),
      ['"w"', 'appears twice in the header'],
    ],
  ];

  it.each(cases)('%s', (_label, make, needles) => {
    const msg = errorOf(() => parseSafetensors(make(), '/models/bad.safetensors'));
    expect(msg).toContain('/models/bad.safetensors');
    for (const needle of needles) expect(msg).toContain(needle);
  });

  it.each(cases)('readSafetensors (header first, from a file): %s', async (label, make, needles) => {
    const path = join(dir, `corrupt-${label.replace(/\W+/g, '-')}.safetensors`);
    await fsp.writeFile(path, make());
    const msg = await readSafetensors(path).then(
      () => 'no error',
      (e: Error) => e.message,
    );
    expect(msg).toContain(path);
    for (const needle of needles) expect(msg).toContain(needle);
  });

  it('does not take duplicate-looking values or nested keys for duplicate keys', () => {
    const header =
      '{"__metadata__": {"w": "w", "a\\"b": "{\\"w\\": 1}"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}';
    expect([...parseSafetensors(build(header, goodData)).tensors.keys()]).toEqual(['w']);
  });

  it('readSafetensors looks at the 8-byte prefix before reading the rest of a huge file', async () => {
    // 3 GiB, sparse (no disk used): reading it whole would fail (over 2 GiB) or cost seconds and gigabytes.
    const path = join(dir, 'zeros.safetensors');
    const fh = await fsp.open(path, 'w');
    await fh.truncate(3 * 2 ** 30);
    await fh.close();
    const t0 = performance.now();
    await expect(readSafetensors(path)).rejects.toThrow(`${path}: header length is 0`);
    expect(performance.now() - t0).toBeLessThan(2000);
    await fsp.rm(path);
  });

  it('rejects a header that is not UTF-8', () => {
    const bytes = build('{"a":1}', goodData);
    bytes[9] = 0xff; // inside the key
    expect(errorOf(() => parseSafetensors(bytes, 'x.st'))).toMatch(/x\.st: header is not valid UTF-8 JSON/);
  });

  it('says "truncated" for a real file cut short, naming the last tensor', () => {
    const bytes = serializeSafetensors({ a: f32([1, 2, 3]), b: f32([4, 5, 6]) });
    for (const cut of [1, 4, 11]) {
      const msg = errorOf(() => parseSafetensors(bytes.subarray(0, bytes.length - cut), 'cut.safetensors'));
      expect(msg).toContain('cut.safetensors');
      expect(msg).toContain('"b"');
      expect(msg).toContain('truncated');
    }
    // Cut inside the header: the header length now exceeds the file.
    expect(errorOf(() => parseSafetensors(bytes.subarray(0, 20)))).toContain('truncated');
  });
});

describe('serializeSafetensors', () => {
  it('lays out tensors in sorted-name order with an 8-byte-aligned data buffer', () => {
    const bytes = serializeSafetensors(
      new Map<string, TensorData>([
        ['z', { dtype: 'int32', shape: [], data: Int32Array.from([-1]) }],
        ['10', f32([3])],
        ['a', f32([1, 2])],
        ['2', f32([4])],
      ]),
      { note: 'hi' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: number[] }>;
    expect(header.__metadata__).toEqual({ note: 'hi' });
    // Keys appear in the text in sorted order (not JS's integer-keys-first order).
    const pos = ['10', '2', 'a', 'z'].map((k) => text.indexOf(`"${k}":{`));
    expect(pos).toEqual([...pos].sort((x, y) => x - y));
    expect(header['10']!.data_offsets).toEqual([0, 4]);
    expect(header['2']!.data_offsets).toEqual([4, 8]);
    expect(header.a!.data_offsets).toEqual([8, 16]);
    expect(header.z).toEqual({ dtype: 'I32', shape: [], data_offsets: [16, 20] });
    // Raw little-endian data bytes: 3.0f, 4.0f, 1.0f, 2.0f, int32 -1.
    expect([...bytes.subarray(8 + n)]).toEqual([
      0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0xff, 0xff, 0xff, 0xff,
    ]);
    expect(bytes.length).toBe(8 + n + 20);
  });

  it('rejects inconsistent tensors with messages naming them', () => {
    expect(() =>
      serializeSafetensors({ w: { dtype: 'float32', shape: [2, 2], data: new Float32Array(3) } }),
    ).toThrow(/tensor "w": data has 3 elements but shape \[2,2\] needs 4/);
    expect(() =>
      serializeSafetensors({
        w: { dtype: 'float32', shape: [1], data: new Int32Array(1) as unknown as Float32Array },
      }),
    ).toThrow(/tensor "w": dtype 'float32' needs data as Float32Array, got Int32Array/);
    expect(() => serializeSafetensors({ __metadata__: f32([1]) })).toThrow(/reserved/);
    expect(() =>
      serializeSafetensors({ w: { dtype: 'float32', shape: [-1], data: new Float32Array(0) } }),
    ).toThrow(/tensor "w": shape \[-1\]/);
    expect(() => serializeSafetensors({}, { step: 1 as unknown as string })).toThrow(
      /metadata value for key "step"/,
    );
  });
});

describe('round trips', () => {
  it('float32/int32 bit-exact, including NaN, ±Inf, -0, subnormals and int32 extremes', () => {
    const special = Float32Array.from([NaN, Infinity, -Infinity, -0, 1e-45, 3.4028234663852886e38, Math.PI]);
    const ints = Int32Array.from([-2147483648, 2147483647, 0, -1]);
    const tensors = {
      s: { dtype: 'float32', shape: [7], data: special },
      i: { dtype: 'int32', shape: [2, 2], data: ints },
    } satisfies Record<string, TensorData>;
    const back = parseSafetensors(serializeSafetensors(tensors)).tensors;
    expect(new Uint32Array(back.get('s')!.data.slice().buffer)).toEqual(new Uint32Array(special.buffer));
    expect(back.get('i')).toEqual({ dtype: 'int32', shape: [2, 2], data: ints });
  });

  it('float64/int64 as F64/I64: exact with { exact: true }, narrowed to float32/int32 by default', async () => {
    const doubles = Float64Array.from([1e5 + 0.3, -0, NaN, Infinity, 5e-324, Math.PI]);
    const longs = BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 7n]);
    // An odd-length F32 tensor first: the 8-byte tensors after it are not 8-byte aligned in the file.
    const bytes = serializeSafetensors({
      a: f32([1]),
      d: { dtype: 'float64', shape: [2, 3], data: doubles },
      l: { dtype: 'int64', shape: [3], data: longs },
      n: { dtype: 'int64', shape: [2], data: BigInt64Array.from([5n, -6n]) },
    });
    const header = JSON.parse(
      new TextDecoder().decode(
        bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))),
      ),
    );
    expect(header.d).toEqual({ dtype: 'F64', shape: [2, 3], data_offsets: [4, 52] });
    expect(header.l.dtype).toBe('I64');
    const exact = parseSafetensors(bytes, 'mem', { exact: true }).tensors;
    const d = exact.get('d')!;
    expect(d.dtype).toBe('float64');
    expect(new BigUint64Array(Float64Array.from(d.data as Float64Array).buffer)).toEqual(
      new BigUint64Array(doubles.buffer),
    );
    expect(exact.get('l')).toEqual({ dtype: 'int64', shape: [3], data: longs });
    expect(exact.get('a')).toEqual({ dtype: 'float32', shape: [1], data: Float32Array.from([1]) });
    // The default read narrows to the tfjs dtypes, refusing an I64 beyond int32.
    expect(() => parseSafetensors(bytes, 'mem')).toThrow(
      /tensor "l": I64 element 0 = -9223372036854775808 is outside/,
    );
    const narrowed = parseSafetensors(
      serializeSafetensors({
        d: { dtype: 'float64', shape: [2, 3], data: doubles },
        n: { dtype: 'int64', shape: [2], data: BigInt64Array.from([5n, -6n]) },
      }),
    ).tensors;
    expect(narrowed.get('d')).toEqual({ dtype: 'float32', shape: [2, 3], data: Float32Array.from(doubles) });
    expect(narrowed.get('n')).toEqual({ dtype: 'int32', shape: [2], data: Int32Array.from([5, -6]) });
    const path = join(tmpdir(), `relign-f64-${process.pid}.safetensors`);
    try {
      await writeSafetensors(path, { d: { dtype: 'float64', shape: [6], data: doubles } });
      const file = await readSafetensors(path, { exact: true });
      expect(Object.is(file.tensors.get('d')!.data[1], -0)).toBe(true);
      expect(file.tensors.get('d')!.data[0]).toBe(1e5 + 0.3);
    } finally {
      await fsp.rm(path, { force: true });
    }
    expect(() =>
      serializeSafetensors({
        w: { dtype: 'float64', shape: [1], data: new Float32Array(1) as unknown as Float64Array },
      }),
    ).toThrow(/tensor "w": dtype 'float64' needs data as Float64Array, got Float32Array/);
  });

  it('scalars, empty tensors and metadata', () => {
    const tensors: Record<string, TensorData> = {
      scalar: { dtype: 'float32', shape: [], data: Float32Array.from([2.5]) },
      iscalar: { dtype: 'int32', shape: [], data: Int32Array.from([-7]) },
      empty: { dtype: 'float32', shape: [0], data: new Float32Array(0) },
      empty2: { dtype: 'int32', shape: [3, 0, 2], data: new Int32Array(0) },
    };
    const meta = { format: 'relign', step: '12', ünïcode: '✓', __proto__: 'plain' };
    const f = parseSafetensors(serializeSafetensors(tensors, meta));
    expect(Object.fromEntries(f.tensors)).toEqual(tensors);
    expect(f.metadata).toEqual(meta);
    expect(Object.getPrototypeOf(f.metadata)).toBe(Object.prototype);
    expect(parseSafetensors(serializeSafetensors({})).tensors.size).toBe(0);
    expect(parseSafetensors(serializeSafetensors({})).metadata).toEqual({});
  });

  it('many tensors with varied shapes, through a file', async () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const tensors = new Map<string, TensorData>();
    for (let k = 0; k < 60; k++) {
      const shape = Array.from({ length: Math.floor(rand() * 4) }, () => Math.floor(rand() * 5));
      const n = shape.reduce((a, b) => a * b, 1);
      const name = `layers.${k}.${k % 2 ? 'weight' : 'bias'}`;
      tensors.set(
        name,
        k % 3 === 0
          ? {
              dtype: 'int32',
              shape,
              data: Int32Array.from({ length: n }, () => Math.floor(rand() * 2e9 - 1e9)),
            }
          : { dtype: 'float32', shape, data: Float32Array.from({ length: n }, () => rand() * 2 - 1) },
      );
    }
    const path = join(dir, 'many.safetensors');
    await writeSafetensors(path, tensors, { n: '60' });
    const f = await readSafetensors(path);
    expect(f.metadata).toEqual({ n: '60' });
    expect([...f.tensors.keys()]).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) expect(f.tensors.get(name)).toEqual(t);
  });

  it('with { finite: true } rejects NaN/Inf weights at load, naming the tensor', async () => {
    const path = join(dir, 'nan.safetensors');
    await writeSafetensors(path, { 'h.0.attn.c_attn.weight': f32([0.5, NaN]), ok: f32([1]) });
    await expect(readSafetensors(path, { finite: true })).rejects.toThrow(
      `${path}: tensor "h.0.attn.c_attn.weight": element 1 is NaN: the weights hold NaN/Inf`,
    );
    await writeSafetensors(path, { w: f32([-Infinity]) });
    await expect(readSafetensors(path, { finite: true })).rejects.toThrow(/"w": element 0 is -Infinity/);
    expect((await readSafetensors(path)).tensors.get('w')!.data[0]).toBe(-Infinity); // other data: as stored
  });

  it('readSafetensors names a missing file', async () => {
    const p = join(dir, 'nope.safetensors');
    await expect(readSafetensors(p)).rejects.toThrow(`cannot read safetensors file ${p}`);
  });

  it('readSafetensors { names } reads only those tensors; readSafetensorsHeader reads no data', async () => {
    const p = join(dir, 'names.safetensors');
    await writeSafetensors(p, { a: f32([1, 2]), b: f32([3]), c: f32([4]) }, { format: 'pt' });
    const file = await readSafetensors(p, { names: ['c', 'a'] });
    expect([...file.tensors.keys()]).toEqual(['a', 'c']);
    await expect(readSafetensors(p, { names: ['a', 'zz'] })).rejects.toThrow(
      `safetensors file ${p}: tensor "zz": is not in this file`,
    );
    expect(await readSafetensorsHeader(p)).toEqual({
      entries: [
        { name: 'a', dtype: 'F32', shape: [2] },
        { name: 'b', dtype: 'F32', shape: [1] },
        { name: 'c', dtype: 'F32', shape: [1] },
      ],
      metadata: { format: 'pt' },
    });
  });
});

describe.each(TEST_BACKENDS)('loadTensors/saveTensors on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('round-trips float32, int32 and bool tensors without leaking', async () => {
    const path = join(dir, `tf-${backend}.safetensors`);
    const src = {
      w: tf.tensor2d([
        [1, -2, 3],
        [0.5, NaN, -Infinity],
      ]),
      ids: tf.tensor1d([5, -6, 7], 'int32'),
      s: tf.scalar(3.25),
      mask: tf.tensor1d([true, false, true], 'bool'),
    };
    await saveTensors(path, src, { backend });
    const before = tf.memory().numTensors;
    const loaded = await loadTensors(path);
    expect(tf.memory().numTensors).toBe(before + 4);
    expect([...loaded.keys()].sort()).toEqual(['ids', 'mask', 's', 'w']);
    const w = loaded.get('w')!;
    expect(w.shape).toEqual([2, 3]);
    expect(w.dtype).toBe('float32');
    expect([...(await w.data())]).toEqual([1, -2, 3, 0.5, NaN, -Infinity]);
    expect(loaded.get('ids')!.dtype).toBe('int32');
    expect([...(await loaded.get('ids')!.data())]).toEqual([5, -6, 7]);
    expect(loaded.get('s')!.shape).toEqual([]);
    expect(await loaded.get('s')!.data()).toEqual(Float32Array.from([3.25]));
    expect(loaded.get('mask')!.dtype).toBe('int32');
    expect([...(await loaded.get('mask')!.data())]).toEqual([1, 0, 1]);
    // Computation on a loaded tensor works on this backend (data is usable, not a dangling view).
    const sum = tf.sum(loaded.get('ids')!);
    expect(await sum.data()).toEqual(Int32Array.from([6]));
    sum.dispose();
    for (const t of loaded.values()) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect((await readSafetensors(path)).metadata).toEqual({ backend });

    await assertNoLeaks(
      async () => {
        await saveTensors(path, src);
        return loadTensors(path).then((m) => [...m.values()]);
      },
      { label: 'saveTensors/loadTensors' },
    );
    Object.values(src).forEach((t) => t.dispose());
  });

  it('rejects unsupported or disposed tensors by name', async () => {
    const path = join(dir, `bad-${backend}.safetensors`);
    const c = tf.tensor1d(['a', 'b'], 'string');
    await expect(saveTensors(path, { z: c })).rejects.toThrow(/tensor "z" has dtype string/);
    c.dispose();
    await expect(saveTensors(path, { z: c })).rejects.toThrow(/tensor "z" is disposed/);
    await expect(fsp.access(path)).rejects.toThrow();
  });
});
