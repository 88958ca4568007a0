import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@relign/tensor';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { p3oV1Loss } from './loss.js';
import type { P3OOptions } from '@relign/p3o';

/** Plain-number description of a minibatch: [y1 values, y2 values] per field. */
interface PairData {
  logRatio: [number[], number[]];
  oldLogRatio: [number[], number[]];
  reward: [number[], number[]];
}

// docs/algorithms.md §5.2 T12 (β = 0.05, ε = 0.2, c = 10: the defaults).
const T12: PairData = {
  reward: [
    [1.0, 1.0, -0.3],
    [0.2, 0.2, 0.5],
  ],
  logRatio: [
    [-0.3, -0.45, 2.0],
    [0.4, 0.42, -1.0],
  ],
  oldLogRatio: [
    [-0.5, -0.5, 1.0],
    [0.45, 0.45, -1.2],
  ],
};
const T12_Q = [0.835, 0.8435, -0.95];
// Per-response ratios ρ1 then ρ2 (V1 logs over the 2B terms).
const T12_RATIO = [1.221403, 1.051271, 2.718282, 0.951229, 0.970446, 1.221403];

interface Evaluated {
  loss: number;
  perPair: number[];
  g1: number[];
  g2: number[];
  stats: Record<string, number>;
}

/** Runs the loss once for values/stats and once under tf.valueAndGrads w.r.t. both logRatio tensors. */
function evaluate(data: PairData, options?: Partial<P3OOptions>): Evaluated {
  const l1 = tf.tensor1d(data.logRatio[0]);
  const l2 = tf.tensor1d(data.logRatio[1]);
  const o = data.oldLogRatio.map((v) => tf.tensor1d(v)) as [tf.Tensor1D, tf.Tensor1D];
  const r = data.reward.map((v) => tf.tensor1d(v)) as [tf.Tensor1D, tf.Tensor1D];
  const run = (a: tf.Tensor1D, b: tf.Tensor1D) =>
    p3oV1Loss({ logRatio: [a, b], oldLogRatio: o, reward: r }, options);

  const out = run(l1, l2);
  const stats = Object.fromEntries(
    Object.entries(out.stats).map(([k, v]) => [k, (v as tf.Scalar).dataSync()[0] as number]),
  );
  const perPair = Array.from(out.perPairLoss.dataSync());
  const { value, grads } = tf.valueAndGrads(
    (a: tf.Tensor, b: tf.Tensor) => run(a as tf.Tensor1D, b as tf.Tensor1D).loss,
  )([l1, l2]);
  const result: Evaluated = {
    loss: value.dataSync()[0] as number,
    perPair,
    g1: Array.from(grads[0]!.dataSync()),
    g2: Array.from(grads[1]!.dataSync()),
    stats,
  };
  expect(result.loss).toBe(out.loss.dataSync()[0]);
  tf.dispose([l1, l2, ...o, ...r, value, ...grads, out as unknown as tf.TensorContainer]);
  return result;
}

function expectClose(actual: readonly number[], expected: readonly number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i] as number;
    if (!(Math.abs(a - e) <= tol)) throw new Error(`index ${i}: got ${a}, expected ${e} (tol ${tol})`);
  });
}

const f32 = (v: number): number => Math.fround(v);

/** float64 reference of docs/algorithms.md §1.5 from float32-representable inputs: per-pair loss, clip state, gradients. */
function reference(data: PairData, { klCoef, clipRange, ratioClip }: P3OOptions) {
  const [L1, L2] = data.logRatio;
  const [O1, O2] = data.oldLogRatio;
  const [R1, R2] = data.reward;
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  const lo = 1 - clipRange;
  const hi = 1 + clipRange;
  return L1.map((l1, i) => {
    const l2 = L2[i]!;
    const q = R1[i]! - R2[i]! - klCoef * (l1 - l2);
    const rho1 = Math.exp(l1 - O1[i]!);
    const rho2 = Math.exp(l2 - O2[i]!);
    const w1 = clamp(rho1, 1 / ratioClip, ratioClip);
    const w2 = clamp(rho2, 1 / ratioClip, ratioClip);
    const a = -q * w2 * rho1;
    const aClip = -q * w2 * clamp(rho1, lo, hi);
    const b = q * w1 * rho2;
    const bClip = q * w1 * clamp(rho2, lo, hi);
    // Distance to the decision boundaries, so float32 rounding cannot flip a branch in a test.
    const margin = Math.min(
      ...[rho1, rho2].flatMap((r) => [Math.abs(r - lo), Math.abs(r - hi)]),
      Math.abs(q),
    );
    return {
      q,
      w1,
      w2,
      loss: (Math.max(a, aClip) + Math.max(b, bClip)) / 2,
      clippedA: aClip > a,
      clippedB: bClip > b,
      dLdL1: aClip > a ? 0 : (-q * w2 * rho1) / 2,
      dLdL2: bClip > b ? 0 : (q * w1 * rho2) / 2,
      margin,
    };
  });
}

describe.each(TEST_BACKENDS)('p3oV1Loss on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('matches spec T12: per-pair loss, LOSS, and gradients (q and w1, w2 detached)', () => {
    const res = evaluate(T12, { klCoef: 0.05, clipRange: 0.2, ratioClip: 10 });
    expectClose(res.perPair, [0.0085, 0, 0.027635], 2e-6);
    expect(res.loss).toBeCloseTo(0.012045, 6);
    // ∂loss_i/∂L1 = [0 (a clipped), −0.430270, 1.577056], ∂loss_i/∂L2 = [0.485066, 0.430270, 0 (b clipped)];
    // pair 2 is a tie in both terms (ratios inside [1 − ε, 1 + ε]). LOSS is the mean, hence × 3.
    expectClose(
      res.g1.map((g) => g * 3),
      [0, -0.43027, 1.577056],
      2e-6,
    );
    expectClose(
      res.g2.map((g) => g * 3),
      [0.485066, 0.43027, 0],
      2e-6,
    );
    expect(Math.abs(res.g1[0]!)).toBe(0); // exactly zero, not merely small
    expect(Math.abs(res.g2[2]!)).toBe(0);
  });

  it('matches T12 statistics, and the defaults are docs/algorithms.md §1.9 (β 0.05, ε 0.2, c 10)', () => {
    const { stats, loss } = evaluate(T12); // no options: defaults
    expect(loss).toBeCloseTo(0.012045, 6);
    expect(stats['loss/policy']).toBe(loss);
    // 2 of the 6 per-response terms are clipped: a of pair 1 and b of pair 3.
    expect(stats['policy/clipfrac']).toBeCloseTo(2 / 6, 6);
    expect(stats['policy/ratio_mean']).toBeCloseTo(T12_RATIO.reduce((s, x) => s + x, 0) / 6, 5);
    expect(stats['policy/ratio_max']).toBeCloseTo(2.718282, 5);
    expect(stats['policy/ratio_min']).toBeCloseTo(0.951229, 5);
    const qMean = T12_Q.reduce((s, x) => s + x, 0) / 3;
    const qStd = Math.sqrt(T12_Q.reduce((s, x) => s + (x - qMean) ** 2, 0) / 3);
    expect(stats['p3o/q_mean']).toBeCloseTo(qMean, 6);
    expect(stats['p3o/q_std']).toBeCloseTo(qStd, 5);
    expect(stats['p3o/reward_diff_mean']).toBeCloseTo(0.8, 6);
    // Higher-reward response: y1, y1, y2 → chosen L = [−0.3, −0.45, −1.0], rejected [0.4, 0.42, 2.0].
    expect(stats['p3o/logratio_chosen']).toBeCloseTo(-1.75 / 3, 6);
    expect(stats['p3o/logratio_rejected']).toBeCloseTo(2.82 / 3, 6);
    expect(stats['p3o/logratio_gap']).toBeCloseTo(-4.57 / 3, 6);
    // Partial options fill the rest with defaults.
    expect(evaluate(T12, { clipRange: 0.2 }).loss).toBe(loss);
  });

  it('each term has exactly zero gradient where its clip is active, −q·w2·ρ1/2 and q·w1·ρ2/2 elsewhere (random pairs, non-default options)', () => {
    const rng = createRng('p3o-v1-clip');
    const B = 64;
    const draw = (mean: number, std: number) => Array.from({ length: B }, () => f32(rng.normal(mean, std)));
    const o1 = draw(0, 1);
    const o2 = draw(0, 1);
    const data: PairData = {
      oldLogRatio: [o1, o2],
      logRatio: [o1.map((x) => f32(x + rng.normal(0, 0.6))), o2.map((x) => f32(x + rng.normal(0, 0.6)))],
      reward: [draw(0, 1), draw(0, 1)],
    };
    const options = { klCoef: 0.1, clipRange: 0.15, ratioClip: 1.5 };
    const ref = reference(data, options);
    const res = evaluate(data, options);
    let clipped = 0;
    let free = 0;
    let clamped = 0;
    const check = (isClipped: boolean, g: number, expected: number, w: number) => {
      if (isClipped) {
        clipped++;
        expect(Math.abs(g)).toBe(0);
      } else {
        free++;
        if (w === 1.5 || w === 1 / 1.5) clamped++;
        expect(g * B).toBeCloseTo(expected, 5);
      }
    };
    ref.forEach((p, i) => {
      if (p.margin < 1e-4) return; // too close to a branch boundary for a float32 verdict
      check(p.clippedA, res.g1[i]!, p.dLdL1, p.w2);
      check(p.clippedB, res.g2[i]!, p.dLdL2, p.w1);
      expect(res.perPair[i]!).toBeCloseTo(p.loss, 5);
    });
    expect(clipped).toBeGreaterThan(10);
    expect(free).toBeGreaterThan(10);
    expect(clamped).toBeGreaterThan(0); // the [1/c, c] clamp was exercised too
    const nClipped = ref.reduce((n, p) => n + Number(p.clippedA) + Number(p.clippedB), 0);
    expect(res.stats['policy/clipfrac']).toBeCloseTo(nClipped / (2 * B), 6);
  });

  it('at θ = θ_old the gradient w.r.t. policy parameters is the pairwise policy gradient −mean(q·∇(S1 − S2))/2', () => {
    // A linear "policy": S_θ(y_k) = X_k·θ, reference S_ref = 0, so L_k = X_k·θ. Computing L from a variable
    // inside the differentiated function checks that q, w1, w2 are detached where it matters (β = 0.5
    // makes a leak through q visible; w would add ∂w terms).
    const rng = createRng('p3o-v1-ppg');
    const B = 5;
    const D = 3;
    const x1 = tf.tensor2d(
      Array.from({ length: B * D }, () => rng.normal()),
      [B, D],
    );
    const x2 = tf.tensor2d(
      Array.from({ length: B * D }, () => rng.normal()),
      [B, D],
    );
    const theta = tf.variable(tf.tensor1d([0.3, -0.2, 0.5]));
    const [r1, r2] = [0, 1].map(() => tf.tensor1d(Array.from({ length: B }, () => rng.normal()))) as [
      tf.Tensor1D,
      tf.Tensor1D,
    ];
    const policy = (x: tf.Tensor2D) => tf.squeeze(tf.matMul(x, tf.expandDims(theta, 1)), [1]) as tf.Tensor1D;
    const old = [policy(x1), policy(x2)] as [tf.Tensor1D, tf.Tensor1D];
    const beta = 0.5;
    let stats: Record<string, number> = {};
    const { value, grads } = tf.variableGrads(() => {
      const out = p3oV1Loss(
        { logRatio: [policy(x1), policy(x2)], oldLogRatio: old, reward: [r1, r2] },
        { klCoef: beta },
      );
      stats = Object.fromEntries(Object.entries(out.stats).map(([k, v]) => [k, v.dataSync()[0] as number]));
      return out.loss;
    });
    const X1 = x1.arraySync();
    const X2 = x2.arraySync();
    const L1 = old[0].arraySync();
    const L2 = old[1].arraySync();
    const R1 = r1.arraySync();
    const R2 = r2.arraySync();
    const expected = [0, 0, 0];
    for (let i = 0; i < B; i++) {
      const q = R1[i]! - R2[i]! - beta * (L1[i]! - L2[i]!);
      for (let j = 0; j < D; j++) expected[j]! -= (q * (X1[i]![j]! - X2[i]![j]!)) / (2 * B);
    }
    expectClose(Array.from(grads[theta.name]!.dataSync()), expected, 1e-5);
    expect(stats['policy/clipfrac']).toBe(0);
    expect(stats['policy/ratio_mean']).toBe(1);
    expect(stats['policy/ratio_max']).toBe(1);
    expect(stats['policy/ratio_min']).toBe(1);
    tf.dispose([x1, x2, theta, r1, r2, ...old, value, ...Object.values(grads)]);
  });

  it('clamps each detached weight to [1/c, c]; a clipped term with a huge ratio has exactly zero gradient', () => {
    // β = 0, so q = r1 − r2.
    // Pair 1: q = 1, ρ1 = e^0.1, ρ2 = e^5 → w2 = c; both terms unclipped (b = q·w1·ρ2 > b_c is the max).
    // Pair 2: q = 1, ρ1 = 1, ρ2 = e^−4 → w2 = 1/c; b is clipped (ρ2 < 1 − ε with advantage −q < 0).
    // Pair 3: q = −1, ρ1 = e^0.1, ρ2 = e^60 (≈ 1e26, finite) → w2 = c; b is clipped, its gradient exactly 0.
    const data: PairData = {
      reward: [
        [1, 1, 0],
        [0, 0, 1],
      ],
      logRatio: [
        [1.1, 0, 0.1],
        [5, -4, 60],
      ],
      oldLogRatio: [
        [1, 0, 0],
        [0, 0, 0],
      ],
    };
    const c = 10;
    const res = evaluate(data, { klCoef: 0, ratioClip: c });
    const e01 = Math.exp(0.1);
    const rel = (actual: number[], expected: number[]) =>
      expectClose(
        actual.map((a, i) => a / Math.max(1, Math.abs(expected[i]!))),
        expected.map((e) => e / Math.max(1, Math.abs(e))),
        1e-5,
      );
    rel(
      res.g1.map((g) => g * 3),
      [(-c * e01) / 2, -1 / c / 2, (c * e01) / 2],
    );
    rel(
      res.g2.map((g) => g * 3),
      [(e01 * Math.exp(5)) / 2, 0, 0],
    );
    expect(Math.abs(res.g2[1]!)).toBe(0);
    expect(Math.abs(res.g2[2]!)).toBe(0);
    expect(res.stats['policy/ratio_max']! / Math.exp(60)).toBeCloseTo(1, 5); // unclamped ratio is logged
  });

  it('is invariant to a per-pair shift δ of both rewards (docs/algorithms.md §1.10): bit-exact on dyadic rewards', () => {
    // Rewards and shifts exactly representable in float32 (so r + δ is exact too): q takes r1 − r2 first,
    // which must then cancel δ exactly.
    const base: PairData = {
      reward: [
        [1.0, 0.25, -0.5, 2.0],
        [0.5, -1.25, 0.75, 1.5],
      ],
      logRatio: [
        [-0.3, 0.1, 1.3, -2.0],
        [0.4, -0.2, 0.5, -1.9],
      ],
      oldLogRatio: [
        [-0.5, 0.2, 1.0, -2.1],
        [0.45, -0.1, 0.9, -1.8],
      ],
    };
    const delta = [1e3, -5e2, 1e3, -5e2];
    const shifted: PairData = {
      ...base,
      reward: [base.reward[0].map((r, i) => r + delta[i]!), base.reward[1].map((r, i) => r + delta[i]!)],
    };
    const a = evaluate(base);
    const b = evaluate(shifted);
    expect(b.loss).toBe(a.loss);
    expect(b.perPair).toEqual(a.perPair);
    expect(b.g1).toEqual(a.g1);
    expect(b.g2).toEqual(a.g2);
    expect(b.stats['p3o/q_mean']).toBe(a.stats['p3o/q_mean']);
    // And on T12 itself, where r + δ is rounded in float32 (ulp at 1e3 is 6e-5).
    const t = evaluate({
      ...T12,
      reward: [T12.reward[0].map((r, i) => r + delta[i]!), T12.reward[1].map((r, i) => r + delta[i]!)],
    });
    expect(t.loss).toBeCloseTo(0.012045, 3);
    expectClose(
      t.g2.map((g) => g * 3),
      [0.485066, 0.43027, 0],
      2e-4,
    );
  });

  it('does not depend on how a batch is split (mean over pairs)', () => {
    const rng = createRng('p3o-v1-split');
    const B = 7;
    const draw = (std: number) => Array.from({ length: B }, () => f32(rng.normal(0, std)));
    const o: [number[], number[]] = [draw(1), draw(1)];
    const all: PairData = {
      oldLogRatio: o,
      logRatio: [o[0].map((x) => f32(x + rng.normal(0, 0.3))), o[1].map((x) => f32(x + rng.normal(0, 0.3)))],
      reward: [draw(1), draw(1)],
    };
    const part = (from: number, to: number): PairData => ({
      logRatio: [all.logRatio[0].slice(from, to), all.logRatio[1].slice(from, to)],
      oldLogRatio: [all.oldLogRatio[0].slice(from, to), all.oldLogRatio[1].slice(from, to)],
      reward: [all.reward[0].slice(from, to), all.reward[1].slice(from, to)],
    });
    const full = evaluate(all);
    const p1 = evaluate(part(0, 3));
    const p2 = evaluate(part(3, B));
    expect(full.loss).toBeCloseTo((3 * p1.loss + 4 * p2.loss) / B, 6);
    expect(full.perPair).toEqual([...p1.perPair, ...p2.perPair]); // per-pair values are elementwise
    expectClose(
      full.g1.map((g) => g * B),
      [...p1.g1.map((g) => g * 3), ...p2.g1.map((g) => g * 4)],
      1e-5,
    );
  });

  it('validates inputs and options with errors that name the field', () => {
    const t = (v: number[], dtype: 'float32' | 'int32' = 'float32') => tf.tensor1d(v, dtype);
    const ok = () => ({
      logRatio: [t([0, 1]), t([1, 0])] as [tf.Tensor1D, tf.Tensor1D],
      oldLogRatio: [t([0, 1]), t([1, 0])] as [tf.Tensor1D, tf.Tensor1D],
      reward: [t([1, 0]), t([0, 1])] as [tf.Tensor1D, tf.Tensor1D],
    });
    const bad = (patch: Record<string, unknown>, options?: unknown) => () => {
      const input = { ...ok(), ...patch };
      try {
        p3oV1Loss(input as never, options as never);
      } finally {
        tf.dispose(
          Object.values(input)
            .flat()
            .filter((x) => x instanceof tf.Tensor) as tf.Tensor[],
        );
      }
    };
    expect(() => p3oV1Loss(null as never)).toThrow(/p3oV1Loss: `input` must be an object/);
    expect(bad({ reward: undefined })).toThrow(/`input\.reward` must be a pair \[y1, y2\]/);
    expect(bad({ logRatio: [t([0, 1])] })).toThrow(/`input\.logRatio` must be a pair/);
    expect(bad({ oldLogRatio: [t([0, 1]), [0, 1]] })).toThrow(
      /`input\.oldLogRatio\[1\]` must be a tf\.Tensor/,
    );
    expect(bad({ oldLogRatio: [t([0, 1]), t([0, 1], 'int32')] })).toThrow(
      /`input\.oldLogRatio\[1\]` must be float32, got int32/,
    );
    expect(bad({ reward: [tf.tensor2d([[1, 0]]), t([0, 1])] })).toThrow(
      /`input\.reward\[0\]` must have rank 1/,
    );
    expect(bad({ reward: [t([1, 0]), t([0, 1, 2])] })).toThrow(
      /`input\.reward\[1\]` must have shape \[B\] = \[2\] like `input\.logRatio\[0\]`, got \[3\]/,
    );
    expect(bad({ logRatio: [t([]), t([])] })).toThrow(/`input\.logRatio\[0\]` is empty/);
    const gone = t([0, 1]);
    gone.dispose();
    expect(bad({ logRatio: [gone, t([0, 1])] })).toThrow(/`input\.logRatio\[0\]` has been disposed/);
    expect(bad({}, { klCoef: -0.1 })).toThrow(/`options\.klCoef` must be a finite number >= 0/);
    expect(bad({}, { clipRange: 0 })).toThrow(/`options\.clipRange` must be a finite number > 0/);
    expect(bad({}, { ratioClip: 1 })).toThrow(/`options\.ratioClip` must be a finite number > 1/);
    expect(bad({}, { klCoef: Number.NaN })).toThrow(/`options\.klCoef`/);
    expect(bad({}, { kl_coef: 0.1 })).toThrow(/unknown option `options\.kl_coef`; the options are klCoef/);
    expect(bad({}, 0.05)).toThrow(/`options` must be an object/);
  });

  it('leaks no tensors (forward, and forward + gradients)', async () => {
    const l = [tf.tensor1d(T12.logRatio[0]), tf.tensor1d(T12.logRatio[1])] as const;
    const o = [tf.tensor1d(T12.oldLogRatio[0]), tf.tensor1d(T12.oldLogRatio[1])] as const;
    const r = [tf.tensor1d(T12.reward[0]), tf.tensor1d(T12.reward[1])] as const;
    await assertNoLeaks(() => p3oV1Loss({ logRatio: l, oldLogRatio: o, reward: r }), { label: 'p3oV1Loss' });
    await assertNoLeaks(
      () =>
        tf.valueAndGrads(
          (a: tf.Tensor, b: tf.Tensor) =>
            p3oV1Loss({ logRatio: [a as tf.Tensor1D, b as tf.Tensor1D], oldLogRatio: o, reward: r }).loss,
        )([...l]),
      { label: 'p3oV1Loss gradients' },
    );
    tf.dispose([...l, ...o, ...r]);
  });
});
