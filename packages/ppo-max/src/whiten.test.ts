import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { whitenAdvantages } from './whiten.js';
import { mossLearningRate, mossLrFactor } from './schedule.js';

const close = (actual: ArrayLike<number>, expected: number[], tol = 1e-5) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) =>
    expect(Math.abs(actual[i]! - e), `index ${i}: ${actual[i]} vs ${e}`).toBeLessThan(tol),
  );
};

describe.each(TEST_BACKENDS)('whitenAdvantages on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('T7: unbiased and biased whitening of the GAE advantages (eps 1e-8); padding is ignored and zeroed', () => {
    const adv = tf.tensor2d([[0.429627, 0.53645, 0.691, 0.78, 55, NaN]]);
    const mask = tf.tensor2d([[1, 1, 1, 1, 0, 0]]);
    const u = whitenAdvantages(adv, mask, { unbiased: true, eps: 1e-8 });
    close(u.dataSync(), [-1.14845, -0.465534, 0.522504, 1.09148, 0, 0]);
    const b = whitenAdvantages(adv, mask, { eps: 1e-8 });
    close(b.dataSync(), [-1.326116, -0.537552, 0.603335, 1.260333, 0, 0]);
    // MOSS default eps 1e-6 on a variance of ~0.0184 changes the result by ~3e-5.
    const moss = whitenAdvantages(adv, mask);
    close(moss.dataSync(), [-1.326116, -0.537552, 0.603335, 1.260333, 0, 0], 1e-4);
    const clipped = whitenAdvantages(adv, mask, { eps: 1e-8, clip: 0.5 });
    close(clipped.dataSync(), [-0.5, -0.5, 0.5, 0.5, 0, 0]);
    tf.dispose([adv, mask, u, b, moss, clipped]);
  });

  it('statistics span every row of the input (a minibatch), and bad options are rejected', async () => {
    const adv = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const mask = tf.ones([2, 2]) as tf.Tensor2D;
    const w = whitenAdvantages(adv, mask, { eps: 0 });
    const s = Math.sqrt(1.25);
    close(w.dataSync(), [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]);
    expect(() => whitenAdvantages(adv, mask, { clip: -1 })).toThrow(/options.clip/);
    expect(() => whitenAdvantages(adv, tf.ones([2, 3]) as tf.Tensor2D)).toThrow(
      /`mask` must have shape \[2, 2\]/,
    );
    await assertNoLeaks(() => whitenAdvantages(adv, mask), { label: 'whitenAdvantages' });
    tf.dispose([adv, mask, w]);
  });
});

describe('MOSS learning-rate schedule (docs/algorithms.md §2.9)', () => {
  it('warms up linearly with a 0.1 floor, then decays as sqrt(W/s); W = 0 is constant', () => {
    expect(mossLrFactor(0, 100)).toBe(0.1);
    expect(mossLrFactor(5, 100)).toBe(0.1);
    expect(mossLrFactor(50, 100)).toBe(0.5);
    expect(mossLrFactor(100, 100)).toBe(1);
    expect(mossLrFactor(400, 100)).toBe(0.5);
    expect(mossLrFactor(7, 0)).toBe(1);
    expect(mossLearningRate(2e-6, 400, 100)).toBeCloseTo(1e-6, 15);
    expect(mossLearningRate(2e-6, 1e12, 100)).toBe(1e-8);
    expect(() => mossLrFactor(-1, 10)).toThrow(/step/);
    expect(() => mossLrFactor(1, 0.5)).toThrow(/warmupSteps/);
  });
});
