import { describe, expect, it } from 'vitest';
import { drawFromLogits, hostWeights } from './host-sampler.js';

/** Seeded uniform floats in [lo, hi). */
function uniforms(n: number, seed: number, lo: number, hi: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

const rowMax = (x: Float32Array) => x.reduce((a, b) => Math.max(a, b), -Infinity);

describe('host sampler (wasm fdlibm exp)', () => {
  it('computes every weight with the bits of Math.exp (wide ranges, temperatures, -Infinity, underflow)', () => {
    let checked = 0;
    const rows: Float32Array[] = [
      uniforms(4096, 1, -20, 20),
      uniforms(4096, 2, -0.001, 0.001), // |x| < 2^-28 and |x| < 0.5 ln2 (k = 0) paths
      uniforms(4096, 3, -1.2, 1.2), // k = -1 path (0.5 ln2 < |x| < 1.5 ln2)
      uniforms(4096, 4, -800, 5), // subnormal results (k < -1021) and below the underflow threshold
      Float32Array.from([-Infinity, 0, -0, 3, -3, 1e-30, -745, -744.5, -708.5, -700]),
    ];
    for (const [r, row] of rows.entries()) {
      for (const inv of [1, 1 / 0.7, 1 / 1.3, 2, 1 / 3]) {
        const max = rowMax(row);
        const w = hostWeights(row, max, inv)!;
        expect(w).not.toBeNull();
        for (let i = 0; i < row.length; i++) {
          const want = Math.exp((row[i]! - max) * inv);
          if (!Object.is(w[i], want)) {
            throw new Error(`row ${r}, inv ${inv}, x ${(row[i]! - max) * inv}: ${w[i]} !== Math.exp ${want}`);
          }
          checked++;
        }
      }
    }
    expect(checked).toBe(5 * (4 * 4096 + 10));
  });

  it('draws the token and Z of its weights (sum in order, inverse CDF) for u across [0, 1)', () => {
    for (const [seed, n, lo, hi] of [
      [5, 256, -8, 8],
      [6, 1024, -30, 5],
      [7, 3, -1, 1],
      [8, 1, 0, 1],
    ] as const) {
      const logits = uniforms(3 * n, seed, lo, hi);
      logits[n + 1] = -Infinity; // a token with no mass in the second row
      for (let r = 0; r < 3; r++) {
        const row = logits.subarray(r * n, (r + 1) * n);
        const max = rowMax(row);
        for (const u of [0, 1e-9, 0.25, 0.5, 0.999, 1 - 2 ** -53, ...uniforms(20, seed + r, 0, 1)]) {
          for (const inv of [1, 1 / 0.7]) {
            const got = drawFromLogits(logits, r * n, n, max, inv, u)!;
            // The reference from the weights (equal to Math.exp's, above): their sum in index order, the
            // first weight whose running sum passes u Z, else the last one with mass.
            const w = hostWeights(row, max, inv)!;
            const Z = w.reduce((a, b) => a + b, 0);
            let acc = 0;
            const first = w.findIndex((e) => e !== 0 && (acc += e) > u * Z);
            const token = first >= 0 ? first : w.reduce((l, e, i) => (e !== 0 ? i : l), -1);
            expect(got).toEqual({ token, Z });
            expect(Object.is(got.Z, Z)).toBe(true);
          }
        }
      }
    }
  });

  it('picks the last token with mass when rounding leaves the walk short of u * Z, and -1 without mass', () => {
    const logits = Float32Array.from([0, -Infinity, 0, -Infinity]);
    expect(drawFromLogits(logits, 0, 4, 0, 1, 1)).toEqual({ token: 2, Z: 2 });
    expect(drawFromLogits(Float32Array.from([-Infinity, -Infinity]), 0, 2, 0, 1, 0.5)).toEqual({
      token: -1,
      Z: 0,
    });
  });
});
