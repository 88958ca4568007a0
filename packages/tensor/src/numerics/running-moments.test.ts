import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '../testing/index.js';
import { RunningMoments } from './running-moments.js';

function unbiasedStd(xs: number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

describe('RunningMoments', () => {
  it('T15: [1,2,3,4] then [10,12] — running μ/σ, batch stats, scale and normalize', () => {
    const rm = new RunningMoments();
    expect(rm.mean).toBe(0);
    expect(rm.std).toBe(1); // no data yet: identity scaling
    const b1 = rm.update([1, 2, 3, 4]);
    expect(b1.batchMean).toBeCloseTo(2.5, 10);
    expect(b1.batchStd).toBeCloseTo(1.290994, 6);
    expect(rm.mean).toBeCloseTo(2.5, 10);
    expect(rm.std).toBeCloseTo(1.290994, 6);
    const b2 = rm.update(new Float32Array([10, 12]));
    expect(b2.batchMean).toBeCloseTo(11, 10);
    expect(b2.batchStd).toBeCloseTo(1.414214, 6);
    expect(rm.mean).toBeCloseTo(5.333333, 6);
    expect(rm.std).toBeCloseTo(4.546061, 6);
    expect(rm.count).toBeCloseTo(6, 10);
    const scaled = rm.scale([10, 12]);
    const normed = rm.normalize([10, 12]);
    expect(scaled[0]).toBeCloseTo(2.199707, 6);
    expect(scaled[1]).toBeCloseTo(2.639648, 6);
    expect(normed[0]).toBeCloseTo(1.02653, 6);
    expect(normed[1]).toBeCloseTo(1.466471, 6);
    expect(rm.scale(10)).toBeCloseTo(2.199707, 6);
    const f = rm.normalize(new Float32Array([10]));
    expect(f).toBeInstanceOf(Float32Array);
    expect(f[0]).toBeCloseTo(1.02653, 5);
  });

  it('running std equals the unbiased std of everything seen (random batches)', () => {
    const rng = createRng('moments');
    const rm = new RunningMoments();
    const all: number[] = [];
    for (let i = 0; i < 20; i++) {
      const batch = Array.from({ length: 1 + rng.int(30) }, () => rng.normal(100, 7));
      rm.update(batch);
      all.push(...batch);
      if (all.length > 1) {
        expect(rm.mean).toBeCloseTo(all.reduce((a, b) => a + b, 0) / all.length, 9);
        expect(rm.std).toBeCloseTo(unbiasedStd(all), 8);
      }
    }
  });

  it('a batch of one value has batchStd 0; std stays 1 until more than one value is seen', () => {
    const rm = new RunningMoments();
    expect(rm.update([5]).batchStd).toBe(0);
    expect(rm.std).toBe(1);
    rm.update([7]);
    expect(rm.std).toBeCloseTo(Math.SQRT2, 9);
  });

  it('toJSON / fromJSON round-trip continues identically; bad JSON is rejected with the field named', () => {
    const a = new RunningMoments();
    a.update([1, 2, 3, 4]);
    const b = RunningMoments.fromJSON(JSON.parse(JSON.stringify(a)));
    const c = RunningMoments.fromJSON(JSON.stringify(a.toJSON()));
    for (const r of [a, b, c]) r.update([10, 12]);
    expect(b.toJSON()).toEqual(a.toJSON());
    expect(c.toJSON()).toEqual(a.toJSON());
    expect(() => RunningMoments.fromJSON('nope')).toThrow(/not valid JSON/);
    expect(() => RunningMoments.fromJSON([] as never)).toThrow(/expected an object \{mean, var, count\}/);
    expect(() => RunningMoments.fromJSON({ mean: 0, var: -1, count: 1 })).toThrow(
      /field `var` must be a finite number >= 0/,
    );
    expect(() => RunningMoments.fromJSON({ mean: 0, var: 1, count: 0 })).toThrow(
      /field `count` must be a finite number > 0/,
    );
    expect(() => RunningMoments.fromJSON({ mean: 'x', var: 1, count: 1 } as never)).toThrow(/field `mean`/);
    expect(() => RunningMoments.fromJSON({ var: 1, count: 1 } as never)).toThrow(/field `mean`/);
  });

  it('rejects non-finite and empty input, saying how many values were bad, and keeps the state', () => {
    const rm = new RunningMoments();
    rm.update([1, 2]);
    const before = rm.toJSON();
    expect(() => rm.update([1, Number.NaN, Number.POSITIVE_INFINITY, 4])).toThrow(
      /2 of 4 values are not finite/,
    );
    expect(() => rm.update([])).toThrow(/`values` is empty/);
    expect(() => rm.update(['1'] as never)).toThrow(/`values\[0\]` is string/);
    expect(rm.toJSON()).toEqual(before);
  });
});

describe.each(TEST_BACKENDS)('RunningMoments with tensors on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('updates from a tensor (any shape) and scales/normalizes tensors without leaking', async () => {
    const rm = new RunningMoments();
    const t = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    await rm.updateFromTensor(t);
    expect(rm.std).toBeCloseTo(1.290994, 6);
    const x = tf.tensor1d([10, 12]);
    await rm.updateFromTensor(x);
    const s = rm.scale(x);
    const n = rm.normalize(x);
    expect(Array.from(s.dataSync()).map((v) => +v.toFixed(5))).toEqual([2.19971, 2.63965]);
    expect(Array.from(n.dataSync()).map((v) => +v.toFixed(5))).toEqual([1.02653, 1.46647]);
    await expect(rm.updateFromTensor(tf.tensor1d([1, Number.NaN]))).rejects.toThrow(
      /1 of 2 values are not finite/,
    );
    // update() takes host values only: a tensor gets an error pointing at the asynchronous read.
    expect(() => rm.update(x as never)).toThrow(/await moments.updateFromTensor/);
    await assertNoLeaks(() => rm.normalize(x), { label: 'RunningMoments.normalize' });
    tf.dispose([t, x, s, n]);
  });
});
