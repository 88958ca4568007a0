import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { valueLoss } from './value-loss.js';

const value = (t: tf.Tensor) => t.dataSync()[0]!;

describe.each(TEST_BACKENDS)('valueLoss on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('T11: V^c = [0.7, 0, −0.5], ½·mean of the per-token max = 0.49, one of three tokens clipped', () => {
    const values = tf.tensor2d([[1.0, 0.0, -0.5]]);
    const oldValues = tf.tensor2d([[0.5, 0.1, -0.5]]);
    const returns = tf.tensor2d([[2.0, -1.0, 0.0]]);
    const mask = tf.ones([1, 3]);
    const r = valueLoss({ values, oldValues, returns, mask }, { clipRange: 0.2 });
    expect(value(r.loss)).toBeCloseTo(0.49, 6);
    expect(value(r.clipFrac)).toBeCloseTo(1 / 3, 6);
    // Gradient: token 0 takes the clipped branch (V moved 0.5 > ε_v away from V_old): 0. Token 1: (V − R)/n.
    // Token 2: (V − R)/n = −0.5/3 (both branches equal; the unclipped one carries it).
    const grad = tf.grad(
      (v: tf.Tensor) => valueLoss({ values: v, oldValues, returns, mask }, { clipRange: 0.2 }).loss,
    )(values);
    const g = grad.dataSync();
    expect(g[0]).toBeCloseTo(0, 7);
    expect(g[1]).toBeCloseTo(1 / 3, 6);
    expect(g[2]).toBeCloseTo(-0.5 / 3, 6);
    // Unclipped: ½·mean((V − R)²) = ½·(1 + 1 + 0.25)/3.
    const u = valueLoss({ values, oldValues, returns, mask }, { clipRange: Infinity });
    expect(value(u.loss)).toBeCloseTo(0.375, 6);
    expect(value(u.clipFrac)).toBe(0);
    tf.dispose([values, oldValues, returns, mask, r.loss, r.clipFrac, grad, u.loss, u.clipFrac]);
  });

  it('is a token mean over the minibatch: micro-batches with the minibatch token count sum to it; padding ignored', () => {
    const values = tf.tensor2d([
      [1.0, 0.0, 9],
      [-0.5, 3, NaN],
    ]);
    const oldValues = tf.tensor2d([
      [0.5, 0.1, 0],
      [-0.5, 2.5, 0],
    ]);
    const returns = tf.tensor2d([
      [2.0, -1.0, 0],
      [0.0, 2, 7],
    ]);
    const mask = tf.tensor2d([
      [1, 1, 0],
      [1, 1, 0],
    ]);
    const full = valueLoss({ values, oldValues, returns, mask }, { clipRange: 0.2 });
    const rows = (t: tf.Tensor, i: number) => tf.slice(t, [i, 0], [1, 3]);
    let sum = 0;
    for (const i of [0, 1]) {
      const r = tf.tidy(() =>
        valueLoss(
          {
            values: rows(values, i),
            oldValues: rows(oldValues, i),
            returns: rows(returns, i),
            mask: rows(mask, i),
          },
          { clipRange: 0.2, tokenCount: 4 },
        ),
      );
      sum += value(r.loss);
      tf.dispose([r.loss, r.clipFrac]);
    }
    // Per token: 1.69, 1.0, 0.25, max((3−2)², (2.7−2)²) = 1 → ½·3.94/4.
    expect(value(full.loss)).toBeCloseTo(0.4925, 6);
    expect(sum).toBeCloseTo(0.4925, 6);
    tf.dispose([values, oldValues, returns, mask, full.loss, full.clipFrac]);
  });

  it('rejects bad input naming the argument, and does not leak', async () => {
    const x = tf.zeros([2, 3]);
    expect(() =>
      valueLoss({ values: x, oldValues: x, returns: tf.zeros([3, 2]), mask: x }, { clipRange: 0.2 }),
    ).toThrow(/valueLoss: `returns` must have shape \[2, 3\]/);
    expect(() => valueLoss({ values: x, oldValues: x, returns: x, mask: x }, { clipRange: -1 })).toThrow(
      /options.clipRange/,
    );
    expect(() => valueLoss({ values: x, oldValues: x, returns: x } as never, { clipRange: 0.2 })).toThrow(
      /`mask` must be a tf.Tensor/,
    );
    await assertNoLeaks(
      () => valueLoss({ values: x, oldValues: x, returns: x, mask: x }, { clipRange: 0.2 }),
      { label: 'valueLoss' },
    );
    x.dispose();
  });
});
