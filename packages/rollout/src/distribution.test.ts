import { createRng } from '@relign/tensor';
import { describe, expect, it } from 'vitest';
import { TokenDistribution } from './distribution.js';

// Probabilities 1/2, 1/4, 1/8, 1/8 at τ = 1; tokens 2 and 3 tie.
const Z = Float32Array.from([Math.log(4), Math.log(2), 0, 0]);
const dist = (temperature: number, topK = 0, topP = 1) =>
  new TokenDistribution(4, { temperature, topK, topP });
const probs = (d: TokenDistribution, z = Z) =>
  Array.from({ length: z.length }, (_, i) => Math.exp(d.logprob(z, 0, i, false)));

describe('TokenDistribution', () => {
  it('gives softmax(z/τ) without truncation (hand-computed)', () => {
    expectClose(probs(dist(1)), [0.5, 0.25, 0.125, 0.125]);
    // τ = 2 takes square roots of the odds: 2 : √2 : 1 : 1.
    const s = 4 + Math.SQRT2;
    expectClose(probs(dist(2)), [2 / s, Math.SQRT2 / s, 1 / s, 1 / s]);
  });

  it('applies top-k, then top-p on the renormalised top-k, ties by lower id (hand-computed)', () => {
    expectClose(probs(dist(1, 2)), [2 / 3, 1 / 3, 0, 0]);
    expectClose(probs(dist(1, 1)), [1, 0, 0, 0]);
    // top-p keeps a token while the mass before it is < p: 0.7 keeps {0, 1} (mass before token 2 is 0.75).
    expectClose(probs(dist(1, 0, 0.7)), [2 / 3, 1 / 3, 0, 0]);
    expectClose(probs(dist(1, 0, 0.75)), [2 / 3, 1 / 3, 0, 0]);
    // 0.76 adds one of the tied tokens: the lower id, 2 (mass before token 3 is 0.875).
    expectClose(probs(dist(1, 0, 0.76)), [4 / 7, 2 / 7, 1 / 7, 0]);
    expectClose(probs(dist(1, 0, 0.3)), [1, 0, 0, 0]);
    // top-k 3 then top-p 0.9 of the renormalised {1/2, 1/4, 1/8}/0.875: masses before are 0, .571, .857 -> all kept.
    expectClose(probs(dist(1, 3, 0.9)), [4 / 7, 2 / 7, 1 / 7, 0]);
    // ... and top-p 0.8 drops token 2 (0.857 >= 0.8).
    expectClose(probs(dist(1, 3, 0.8)), [2 / 3, 1 / 3, 0, 0]);
  });

  it('samples by inverse CDF in id order and reports the exact log-prob of the draw', () => {
    const d = dist(1);
    expect(d.sample(Z, 0, 0.49).token).toBe(0);
    expect(d.sample(Z, 0, 0.51).token).toBe(1);
    expect(d.sample(Z, 0, 0.8).token).toBe(2);
    expect(d.sample(Z, 0, 0.9).token).toBe(3);
    expect(d.sample(Z, 0, 0.9).logprob).toBeCloseTo(Math.log(0.125), 7);
    const k = dist(1, 2);
    expect(k.sample(Z, 0, 0.66).token).toBe(0);
    const draw = k.sample(Z, 0, 0.67);
    expect(draw.token).toBe(1);
    expect(draw.logprob).toBeCloseTo(Math.log(1 / 3), 7);
    // The row is read at an offset: the same logits placed after 4 junk entries.
    const shifted = Float32Array.from([9, 9, 9, 9, ...Z]);
    expect(k.sample(shifted, 4, 0.67)).toEqual(draw);
  });

  it('draws the same token and log-prob bits from a Float32Array (wasm) as from a plain array (JS loop)', () => {
    const rng = createRng(11);
    for (const [V, spread, temperature] of [
      [256, 8, 1],
      [1024, 30, 0.7],
      [5, 2, 1.3],
    ] as const) {
      const d = new TokenDistribution(V, { temperature, topK: 0, topP: 1 });
      const rows = Float32Array.from({ length: 4 * V }, () => spread * (2 * rng.uniform() - 1));
      rows[V + 3] = -Infinity; // a token without mass
      const plain = Array.from(rows);
      for (let r = 0; r < 4; r++) {
        for (const u of [0, 0.5, 1 - 2 ** -53, rng.uniform(), rng.uniform(), rng.uniform()]) {
          const wasm = d.sample(rows, r * V, u);
          const js = d.sample(plain, r * V, u);
          expect(wasm.token).toBe(js.token);
          expect(Object.is(wasm.logprob, js.logprob)).toBe(true);
        }
      }
    }
  });

  it('draws with the frequencies of the truncated distribution', () => {
    const rng = createRng(11);
    const d = dist(0.8, 3, 0.9);
    const expected = probs(d);
    const counts = [0, 0, 0, 0];
    const n = 40_000;
    for (let i = 0; i < n; i++) {
      const { token, logprob } = d.sample(Z, 0, rng.uniform());
      counts[token]!++;
      expect(logprob).toBeCloseTo(Math.log(expected[token]!), 7);
    }
    // Binomial std <= 0.0025 at n = 40000: 0.01 is four standard deviations.
    counts.forEach((c, i) => expect(Math.abs(c / n - expected[i]!)).toBeLessThan(0.01));
    expect(counts[3]).toBe(0);
  });

  it('is greedy at temperature 0: argmax, lowest id on ties, log-prob 0', () => {
    const d = dist(0);
    expect(d.sample(Z, 0, 0.99)).toEqual({ token: 0, logprob: 0 });
    const tie = Float32Array.from([0, 3, 3, 1]);
    expect(d.sample(tie, 0, 0.5)).toEqual({ token: 1, logprob: 0 });
    expect(d.logprob(tie, 0, 1)).toBe(0);
  });

  it('support() marks the kept set and can force a token in', () => {
    const out = new Uint8Array(4);
    expect(dist(1, 2).support(Z, 0, out, 3)).toBe(false);
    expect([...out]).toEqual([1, 1, 0, 1]);
    expect(dist(1, 2).support(Z, 0, out, 1)).toBe(true);
    expect([...out]).toEqual([1, 1, 0, 0]);
    // Forced in, token 3 gets its share of the enlarged support {0, 1, 3}: 1/8 / 7/8.
    expect(Math.exp(dist(1, 2).logprob(Z, 0, 3))).toBeCloseTo(1 / 7, 7);
    expect(dist(1, 2).logprob(Z, 0, 3, false)).toBe(-Infinity);
  });

  it('rejects non-finite logits with a clear error', () => {
    expect(() => dist(1).sample(Float32Array.from([0, NaN, 1, 2]), 0, 0.5)).toThrow(
      /non-finite logit \(NaN at token 1\)/,
    );
    expect(() => dist(1).sample(Float32Array.from([0, Infinity, 1, 2]), 0, 0.5)).toThrow(/non-finite/);
  });
});

function expectClose(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(a).toBeCloseTo(expected[i]!, 7));
}
