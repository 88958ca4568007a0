import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { rlooLoss, type RlooLossType } from './index.js';

describe.each(TEST_BACKENDS)('rlooLoss on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  const A = [1, -0.5, 2, -1];
  const grad = (s: number[], old: number[], lossType: RlooLossType) =>
    tf.tidy(() => {
      const g = tf.grad(
        (x: tf.Tensor) =>
          rlooLoss(
            { logprobSums: x as tf.Tensor1D, oldLogprobSums: tf.tensor1d(old), advantages: tf.tensor1d(A) },
            { lossType },
          ).loss,
      )(tf.tensor1d(s));
      return g.arraySync() as number[];
    });

  it("at ρ = 1 the clipped form's gradient is REINFORCE's, −A_i/B (docs/algorithms.md §9)", () => {
    const s = [-3, -2.5, -4, -1];
    const clipped = grad(s, s, 'clipped');
    const reinforce = grad(s, s, 'reinforce');
    clipped.forEach((g, i) => {
      expect(g).toBeCloseTo(-A[i]! / 4, 6);
      expect(reinforce[i]).toBeCloseTo(-A[i]! / 4, 6);
    });
  });

  it('the gradient is exactly 0 where the clipped term is active, and the stats say so', () => {
    // ρ = e^0.5 > 1.2 with A > 0 and ρ = e^−0.5 < 0.8 with A < 0: clipped; the other two are inside the range.
    const old = [-3, -2.5, -4, -1];
    const s = [old[0]! + 0.5, old[1]! - 0.5, old[2]! + 0.1, old[3]! - 0.1];
    const g = grad(s, old, 'clipped');
    expect(g[0]).toBe(0);
    expect(g[1]).toBe(0);
    expect(g[2]).toBeCloseTo((-A[2]! * Math.exp(0.1)) / 4, 5);
    expect(g[3]).toBeCloseTo((-A[3]! * Math.exp(-0.1)) / 4, 5);
    const r = rlooLoss({
      logprobSums: tf.tensor1d(s),
      oldLogprobSums: tf.tensor1d(old),
      advantages: tf.tensor1d(A),
    });
    expect(r.clipfrac.arraySync()).toBeCloseTo(0.5, 6);
    expect(r.approxkl.arraySync()).toBeCloseTo((0.5 * (0.25 + 0.25 + 0.01 + 0.01)) / 4, 6);
    // loss = mean(max(−Aρ, −A clip ρ)) = (−1.2 + 0.5·0.8 − 2e^0.1 + e^−0.1)/4
    expect(r.loss.arraySync()).toBeCloseTo((-1.2 + 0.4 - 2 * Math.exp(0.1) + Math.exp(-0.1)) / 4, 5);
    tf.dispose([r.loss, r.ratio, r.clipfrac, r.approxkl]);
  });

  it('rejects a bad clip range or shape; leaks nothing', async () => {
    const t = tf.tensor1d([0, 0]);
    expect(() => rlooLoss({ logprobSums: t, oldLogprobSums: t, advantages: t }, { clipRange: 1 })).toThrow(
      /clipRange must be in \(0, 1\)/,
    );
    const three = tf.tensor1d([0, 0, 0]);
    expect(() => rlooLoss({ logprobSums: t, oldLogprobSums: t, advantages: three })).toThrow(
      /input\.advantages must be a Tensor1D \[B\]/,
    );
    await assertNoLeaks(() => {
      const r = rlooLoss({ logprobSums: t, oldLogprobSums: t, advantages: t });
      tf.dispose([r.loss, r.ratio, r.clipfrac, r.approxkl]);
    });
    tf.dispose([t, three]);
  });
});
