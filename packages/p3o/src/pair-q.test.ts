import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { pairQ, pairStats } from './index.js';

// docs/algorithms.md §5.2, T12: three pairs.
const R1 = [1, 1, -0.3];
const R2 = [0.2, 0.2, 0.5];
const L1 = [-0.3, -0.45, 2];
const L2 = [0.4, 0.42, -1];

const values = async (t: tf.Tensor): Promise<number[]> => Array.from(await t.data());

describe.each(TEST_BACKENDS)('pairQ and pairStats on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('pairQ matches spec T12 and cancels δ', async () => {
    const t = (v: number[]) => tf.tensor1d(v);
    const [r1, r2, l1, l2] = [t(R1), t(R2), t(L1), t(L2)];
    const q = pairQ(r1, r2, l1, l2, 0.05);
    (await values(q)).forEach((v, i) => expect(v).toBeCloseTo([0.835, 0.8435, -0.95][i]!, 6));
    const shift = t([1024, -512, 256]);
    const qs = pairQ(tf.add(r1, shift) as tf.Tensor1D, tf.add(r2, shift) as tf.Tensor1D, l1, l2, 0.05);
    const qv = await values(q);
    (await values(qs)).forEach((v, i) => expect(v).toBeCloseTo(qv[i]!, 4)); // r + δ rounds in float32
    tf.dispose([r1, r2, l1, l2, q, shift, qs]);
  });

  it('pairStats: q mean and population std, |r1 − r2|, log-ratios of the higher- and lower-reward response', async () => {
    const t = (v: number[]) => tf.tensor1d(v);
    // Pair 2 is a tie (r1 = r2): y1 counts as chosen.
    const [r1, r2, l1, l2] = [t([1, 0, 2]), t([0, 3, 2]), t([-1, -2, -3]), t([4, 5, 6])];
    const q = t([1, -3, 2]);
    const stats = pairStats(q, r1, r2, l1, l2);
    const got = Object.fromEntries(
      await Promise.all(Object.entries(stats).map(async ([k, v]) => [k, (await values(v))[0]!] as const)),
    );
    expect(Object.keys(got).sort()).toEqual([
      'p3o/logratio_chosen',
      'p3o/logratio_gap',
      'p3o/logratio_rejected',
      'p3o/q_mean',
      'p3o/q_std',
      'p3o/reward_diff_mean',
    ]);
    expect(got['p3o/q_mean']).toBeCloseTo(0, 6);
    expect(got['p3o/q_std']).toBeCloseTo(Math.sqrt((1 + 9 + 4) / 3), 5); // population, not sample
    expect(got['p3o/reward_diff_mean']).toBeCloseTo((1 + 3 + 0) / 3, 6);
    expect(got['p3o/logratio_chosen']).toBeCloseTo((-1 + 5 - 3) / 3, 6); // y1, y2, y1 (tie)
    expect(got['p3o/logratio_rejected']).toBeCloseTo((4 - 2 + 6) / 3, 6);
    expect(got['p3o/logratio_gap']).toBeCloseTo((-1 + 5 - 3) / 3 - (4 - 2 + 6) / 3, 5);
    tf.dispose([r1, r2, l1, l2, q, ...Object.values(stats)]);
  });

  it('leaks no tensors', async () => {
    const t = (v: number[]) => tf.tensor1d(v);
    const [r1, r2, l1, l2] = [t(R1), t(R2), t(L1), t(L2)];
    await assertNoLeaks(() => tf.tidy(() => pairStats(pairQ(r1, r2, l1, l2, 0.05), r1, r2, l1, l2)), {
      label: 'pairQ + pairStats',
    });
    tf.dispose([r1, r2, l1, l2]);
  });
});
