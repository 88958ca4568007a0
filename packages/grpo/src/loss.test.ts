import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { grpoLoss, type GrpoLossType } from './index.js';

// Spec vector T16b (docs/algorithms.md §8.3).
const LP = [
  [-1.0, -2.0, -0.5],
  [-0.3, -1.2, -2.2],
];
const OLD = [
  [-1.1, -1.7, -0.5],
  [-0.3, -1.0, -2.0],
];
const REF = [
  [-1.2, -2.0, -0.4],
  [-0.5, -1.1, -2.0],
];
const MASK = [
  [1, 1, 1],
  [1, 1, 0],
];
const ADV = [1.0, -0.5];
const BNPO = {
  loss: -0.386942,
  grad: [
    [-0.219584, -0.148164, -0.200841],
    [0.10145, 0.081032, 0],
  ],
};
const T16B: Record<GrpoLossType, { loss: number; grad: number[][] }> = {
  grpo: {
    loss: -0.246592,
    grad: [
      [-0.182987, -0.12347, -0.167368],
      [0.126813, 0.10129, 0],
    ],
  },
  bnpo: BNPO,
  dapo: BNPO, // one process, one minibatch: DAPO's global token count is bnpo's (docs/algorithms.md §8.2)
  dr_grpo: {
    loss: -0.322452,
    grad: [
      [-0.182987, -0.12347, -0.167368],
      [0.084542, 0.067526, 0],
    ],
  },
};

function run(lossType: GrpoLossType, beta = 0.04): { loss: number; grad: number[][] } {
  return tf.tidy(() => {
    const old = tf.tensor2d(OLD);
    const ref = tf.tensor2d(REF);
    const mask = tf.tensor2d(MASK);
    const adv = tf.tensor1d(ADV);
    const f = (lp: tf.Tensor): tf.Scalar =>
      grpoLoss(
        { logprobs: lp as tf.Tensor2D, oldLogprobs: old, refLogprobs: ref, advantages: adv, mask },
        { clipRange: 0.2, clipRangeHigh: 0.2, beta, lossType, maxCompletionLength: 3 },
      ).loss;
    const { value, grad } = tf.valueAndGrad(f)(tf.tensor2d(LP));
    return { loss: value.arraySync(), grad: grad.arraySync() as number[][] };
  });
}

describe.each(TEST_BACKENDS)('grpoLoss on %s (docs/algorithms.md §8.2)', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each(['grpo', 'bnpo', 'dapo', 'dr_grpo'] as const)(
    'matches T16b with lossType %s: loss and ∂L/∂ℓ_θ',
    (lossType) => {
      const before = tf.memory().numTensors;
      const { loss, grad } = run(lossType);
      expect(tf.memory().numTensors).toBe(before);
      expect(loss).toBeCloseTo(T16B[lossType].loss, 5);
      grad.forEach((row, i) => row.forEach((g, t) => expect(g).toBeCloseTo(T16B[lossType].grad[i]![t]!, 5)));
    },
  );

  it('reports TRL statistics: k3 mean, clip ratios, ratio range over valid tokens; gradient 0 where the clip is active', async () => {
    const lp = tf.tensor2d([[0, 0, 0, 0]]);
    const old = tf.tensor2d([[-0.5, 0.5, -0.5, 0.5]]); // ρ = e^0.5, e^-0.5, e^0.5, e^-0.5 (spec T10)
    const mask = tf.tensor2d([[1, 1, 1, 0]]);
    const gradAt = (a: number): number[] =>
      tf.tidy(() =>
        Array.from(
          tf
            .grad(
              (x: tf.Tensor) =>
                grpoLoss({ logprobs: x as tf.Tensor2D, oldLogprobs: old, advantages: tf.tensor1d([a]), mask })
                  .loss,
            )(lp)
            .dataSync(),
        ),
      );
    // A > 0: token 0 (ρ = 1.65 > 1.2) is clipped, gradient 0; token 1 (ρ = 0.61): unclipped is the min.
    const gPos = gradAt(1);
    expect(gPos[0]).toBe(0);
    expect(gPos[1]).toBeCloseTo(-Math.exp(-0.5) / 3, 6);
    expect(gPos[3]).toBe(0); // padding
    const r = grpoLoss({
      logprobs: lp,
      oldLogprobs: old,
      advantages: tf.tensor1d([1]),
      mask,
      refLogprobs: old,
    });
    const [kl, low, high, region, mean, min, max] = await Promise.all(
      [
        r.stats.kl,
        r.stats.clipRatioLow,
        r.stats.clipRatioHigh,
        r.stats.clipRatioRegion,
        r.stats.ratioMean,
        r.stats.ratioMin,
        r.stats.ratioMax,
      ].map(async (t) => (await t.data())[0]!),
    );
    const k3 = (u: number): number => Math.exp(u) - u - 1;
    expect(kl).toBeCloseTo((2 * k3(-0.5) + k3(0.5)) / 3, 6);
    expect(low).toBe(0); // A > 0: no low clip
    expect(high).toBeCloseTo(2 / 3, 6); // tokens 0 and 2 (ρ = 1.65 > 1.2)
    expect(region).toBeCloseTo(2 / 3, 6);
    expect(mean).toBeCloseTo((2 * Math.exp(0.5) + Math.exp(-0.5)) / 3, 5);
    expect(min).toBeCloseTo(Math.exp(-0.5), 6); // the masked token 3 is left out
    expect(max).toBeCloseTo(Math.exp(0.5), 5);
    tf.dispose([lp, old, mask, r.loss, r.perTokenLoss, ...Object.values(r.stats)]);
  });

  it('defaults: ε 0.2, ε_high = ε, β 0, dapo, maxCompletionLength = T', () => {
    const res = tf.tidy(() => {
      const input = {
        logprobs: tf.tensor2d(LP),
        oldLogprobs: tf.tensor2d(OLD),
        advantages: tf.tensor1d(ADV),
        mask: tf.tensor2d(MASK),
      };
      const a = grpoLoss(input).loss.arraySync();
      const b = grpoLoss(input, {
        clipRange: 0.2,
        clipRangeHigh: 0.2,
        beta: 0,
        lossType: 'bnpo',
        maxCompletionLength: 3,
      }).loss.arraySync();
      return [a, b];
    });
    expect(res[0]).toBe(res[1]);
  });

  it('rejects bad input naming the argument', () => {
    tf.tidy(() => {
      const lp = tf.tensor2d(LP);
      const base = {
        logprobs: lp,
        oldLogprobs: tf.tensor2d(OLD),
        advantages: tf.tensor1d(ADV),
        mask: tf.tensor2d(MASK),
      };
      expect(() => grpoLoss(base, { beta: 0.1 })).toThrow(
        /grpoLoss: options\.beta is 0\.1 but input\.refLogprobs is missing/,
      );
      expect(() => grpoLoss({ ...base, advantages: tf.tensor1d([1, 2, 3]) })).toThrow(
        /grpoLoss: `input\.advantages` must have shape \[2\]/,
      );
      expect(() => grpoLoss({ ...base, oldLogprobs: tf.tensor2d([[1, 2]]) })).toThrow(
        /`input\.oldLogprobs` must have shape \[2, 3\]/,
      );
      expect(() => grpoLoss(base, { lossType: 'ppo' as GrpoLossType })).toThrow(
        /options\.lossType must be one of grpo, bnpo, dr_grpo, dapo/,
      );
      expect(() => grpoLoss(base, { lossType: 'dr_grpo', maxCompletionLength: 2 })).toThrow(
        /options\.maxCompletionLength must be an integer >= the tensors' width T = 3/,
      );
    });
  });
});
