import { describe, expect, it } from 'vitest';
import { createRng, Rng, rngFromState } from './rng.js';

const draw = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.nextUint32());

describe('Rng (xoshiro128**)', () => {
  it('matches the reference xoshiro128** recurrence from state [1, 2, 3, 4]', () => {
    // Outputs of the published C reference next() for s = {1, 2, 3, 4}, computed independently (Python).
    const rng = new Rng([1, 2, 3, 4]);
    expect(draw(rng, 6)).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
    expect(rng.state().s).toEqual([1110993931, 286554632, 2431677446, 2165318166]);
  });

  it('is deterministic per seed, and different seeds (numbers, strings) give different streams', () => {
    expect(draw(createRng(42), 20)).toEqual(draw(createRng(42), 20));
    expect(draw(createRng('run-a'), 20)).toEqual(draw(createRng('run-a'), 20));
    const streams = [
      createRng(0),
      createRng(1),
      createRng(-1),
      createRng(2 ** 40),
      createRng('1'),
      createRng('run-a'),
      createRng(''),
    ].map((r) => draw(r, 4).join(','));
    expect(new Set(streams).size).toBe(streams.length);
  });

  it('restores mid-stream from state() (object and JSON string) with identical continuation', () => {
    const rng = createRng(7);
    draw(rng, 13);
    rng.uniform();
    const saved = rng.state();
    const json = JSON.stringify(saved);
    const expected = [...draw(rng, 10), rng.uniform(), rng.normal(), rng.int(1000)];
    for (const restored of [rngFromState(saved), rngFromState(json), Rng.fromState(JSON.parse(json))]) {
      expect([...draw(restored, 10), restored.uniform(), restored.normal(), restored.int(1000)]).toEqual(
        expected,
      );
    }
  });

  it('rejects corrupt states and bad seeds with clear errors', () => {
    const good = createRng(1).state();
    expect(() => rngFromState('{oops')).toThrow(/not valid JSON/);
    expect(() => rngFromState({ ...good, algorithm: 'mt19937' } as never)).toThrow(/unsupported algorithm/);
    expect(() => rngFromState({ ...good, version: 2 } as never)).toThrow(/version/);
    expect(() => rngFromState({ ...good, s: [1, 2, 3] } as never)).toThrow(/4 uint32 words/);
    expect(() => rngFromState({ ...good, s: [1, 2, 3, 2 ** 32] } as never)).toThrow(/s\[3\]/);
    expect(() => rngFromState({ ...good, s: [1, -2, 3, 4] } as never)).toThrow(/s\[1\]/);
    expect(() => rngFromState({ ...good, s: [0, 0, 0, 0] })).toThrow(/all zero/);
    expect(() => createRng(1.5)).toThrow(/safe integer/);
    expect(() => createRng(Number.NaN)).toThrow(/safe integer/);
    expect(() => createRng(null as never)).toThrow(/number or a string/);
  });

  it('split() gives streams that differ from the parent, from each other, and advances the parent', () => {
    const parent = createRng(3);
    const before = parent.state();
    const a = parent.split();
    expect(parent.state()).not.toEqual(before);
    const b = parent.split();
    const aa = a.split();
    const seqs = [parent, a, b, aa].map((r) => draw(r, 64));
    for (let i = 0; i < seqs.length; i++) {
      for (let j = i + 1; j < seqs.length; j++) {
        // Independent 32-bit streams agree at a given position with probability 2^-32.
        const same = seqs[i]!.filter((x, k) => x === seqs[j]![k]).length;
        expect(same).toBe(0);
      }
    }
    // Splitting is itself deterministic.
    const p2 = createRng(3);
    expect(draw(p2.split(), 8)).toEqual(draw(createRng(3).split(), 8));
  });

  it('uniform() is in [0, 1) with mean ≈ 1/2 and variance ≈ 1/12 over 1e5 draws', () => {
    const rng = createRng('uniform');
    const n = 100_000;
    let s = 0;
    let s2 = 0;
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      s += u;
      s2 += u * u;
      lo = Math.min(lo, u);
      hi = Math.max(hi, u);
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    // Std error of the mean is 0.29/sqrt(1e5) ≈ 9e-4; bounds are > 5 standard errors.
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.003);
    // 53-bit resolution: a draw is not a multiple of 2^-32 in general.
    const fine = Array.from({ length: 100 }, () => rng.uniform()).filter(
      (u) => (u * 2 ** 32) % 1 !== 0,
    ).length;
    expect(fine).toBeGreaterThan(90);
  });

  it('normal() has mean ≈ 0 and variance ≈ 1 (1e5 draws); mean/std arguments shift and scale', () => {
    const rng = createRng(11);
    const n = 100_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal();
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.02);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.03);
    const a = createRng(5);
    const b = createRng(5);
    expect(a.normal(3, 2)).toBeCloseTo(3 + 2 * b.normal(), 12);
  });

  it('int(n) covers [0, n) without bias beyond tolerance (chi-square, n = 7 and n = 3·2^30)', () => {
    const rng = createRng('int');
    const n = 7;
    const draws = 70_000;
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < draws; i++) {
      const k = rng.int(n);
      expect(Number.isInteger(k) && k >= 0 && k < n).toBe(true);
      counts[k]!++;
    }
    const expected = draws / n;
    const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(22.5); // 6 dof: P(chi2 > 22.5) ≈ 0.001
    // n = 3·2^30: naive `x % n` would put 2/3 of draws in the first third; rejection keeps it 1/3.
    const big = 3 * 2 ** 30;
    let firstThird = 0;
    for (let i = 0; i < 30_000; i++) if (rng.int(big) < 2 ** 30) firstThird++;
    expect(Math.abs(firstThird / 30_000 - 1 / 3)).toBeLessThan(0.02);
    // Beyond 32 bits.
    for (let i = 0; i < 100; i++) {
      const k = rng.int(2 ** 40 + 3);
      expect(Number.isInteger(k) && k >= 0 && k < 2 ** 40 + 3).toBe(true);
    }
    expect(rng.int(1)).toBe(0);
    expect(() => rng.int(0)).toThrow(/integer in \[1, 2\^53\]/);
    expect(() => rng.int(2.5)).toThrow(/integer/);
  });

  it('shuffle() permutes in place; permutation(n) is a permutation; positions are uniform', () => {
    const rng = createRng(99);
    const arr = Array.from({ length: 50 }, (_, i) => `x${i}`);
    const orig = [...arr];
    const out = rng.shuffle(arr);
    expect(out).toBe(arr);
    expect([...arr].sort()).toEqual([...orig].sort());
    expect(arr).not.toEqual(orig);
    const p = rng.permutation(1000);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(rng.permutation(0)).toEqual([]);
    // Where element 0 lands after shuffling 4 items: uniform over 4 slots.
    const slots = [0, 0, 0, 0];
    for (let i = 0; i < 20_000; i++) slots[rng.permutation(4).indexOf(0)]!++;
    for (const c of slots) expect(Math.abs(c / 20_000 - 0.25)).toBeLessThan(0.015);
  });

  it('tfSeed() returns non-negative int32 values that differ across calls; clone() copies the stream', () => {
    const rng = createRng(1);
    const seeds = Array.from({ length: 10 }, () => rng.tfSeed());
    for (const s of seeds) expect(Number.isInteger(s) && s >= 0 && s < 2 ** 31).toBe(true);
    expect(new Set(seeds).size).toBe(10);
    const c = rng.clone();
    expect(draw(c, 5)).toEqual(draw(rng, 5));
  });
});
