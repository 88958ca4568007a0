import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { dpoLoss, resolveDpoLossOptions, type DpoLossInputs, type DpoLossOptions } from './loss.js';

const LN2 = Math.log(2);

/** docs/algorithms.md §5.2 T13: S_θ(y_w) = −10, S_θ(y_l) = −12, S_ref(y_w) = −11, S_ref(y_l) = −11.5 → h = 1.5. */
const T13 = { policyChosen: [-10], policyRejected: [-12], refChosen: [-11], refRejected: [-11.5] };

type HostInputs = {
  policyChosen: number[];
  policyRejected: number[];
  refChosen: number[];
  refRejected: number[];
};

/**
 * Loss, per-pair losses, statistics and the gradients w.r.t. the policy sums, read back to the host. The
 * gradient is of the batch-mean loss.
 */
function run(
  host: HostInputs,
  options?: DpoLossOptions,
  extra: Partial<Pick<DpoLossInputs, 'chosenLengths' | 'rejectedLengths'>> & { preference?: number[] } = {},
) {
  const refChosen = tf.tensor1d(host.refChosen);
  const refRejected = tf.tensor1d(host.refRejected);
  const preference = extra.preference ? tf.tensor1d(extra.preference) : undefined;
  type Stats = Record<
    'losses' | 'logits' | 'chosenReward' | 'rejectedReward' | 'accuracy' | 'margin',
    number[]
  >;
  let stats: Stats | undefined;
  const f = (pc: tf.Tensor, pr: tf.Tensor): tf.Scalar => {
    const out = dpoLoss(
      {
        policyChosen: pc as tf.Tensor1D,
        policyRejected: pr as tf.Tensor1D,
        refChosen,
        refRejected,
        ...(extra.chosenLengths ? { chosenLengths: extra.chosenLengths } : {}),
        ...(extra.rejectedLengths ? { rejectedLengths: extra.rejectedLengths } : {}),
        ...(preference ? { preference } : {}),
      },
      options,
    );
    stats = {
      losses: Array.from(out.losses.dataSync()),
      logits: Array.from(out.logits.dataSync()),
      chosenReward: Array.from(out.chosenReward.dataSync()),
      rejectedReward: Array.from(out.rejectedReward.dataSync()),
      accuracy: Array.from(out.accuracy.dataSync()),
      margin: Array.from(out.margin.dataSync()),
    };
    return out.loss;
  };
  const pc = tf.tensor1d(host.policyChosen);
  const pr = tf.tensor1d(host.policyRejected);
  const { value, grads } = tf.valueAndGrads(f)([pc, pr]);
  const result = {
    loss: value.dataSync()[0]!,
    gradChosen: Array.from(grads[0]!.dataSync()),
    gradRejected: Array.from(grads[1]!.dataSync()),
    ...stats!,
  };
  tf.dispose([value, ...grads, pc, pr, refChosen, refRejected, ...(preference ? [preference] : [])]);
  return result;
}

describe.each(TEST_BACKENDS)('dpoLoss on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('spec T13, DPO (β = 0.1): loss 0.620957, ∂/∂S_θ(y_w) = −0.046257, implicit rewards 0.1 / −0.05', () => {
    const r = run(T13, { beta: 0.1 });
    expect(r.loss).toBeCloseTo(0.620957, 5);
    expect(r.gradChosen[0]).toBeCloseTo(-0.046257, 6);
    expect(r.gradRejected[0]).toBeCloseTo(0.046257, 6); // ∂/∂S_θ(y_l) = +βσ(−βh) (docs/algorithms.md §3.1)
    expect(r.logits![0]).toBeCloseTo(1.5, 6);
    expect(r.chosenReward![0]).toBeCloseTo(0.1, 6);
    expect(r.rejectedReward![0]).toBeCloseTo(-0.05, 6);
    expect(r.accuracy![0]).toBe(1);
    expect(r.margin![0]).toBeCloseTo(0.15, 6);
    // Defaults are docs/algorithms.md §3.1's (β 0.1, sigmoid, no smoothing).
    expect(run(T13).loss).toBeCloseTo(0.620957, 5);
  });

  it('spec T13, cDPO (ε = 0.1): loss 0.635957, ∂/∂S_θ(y_w) = −0.036257', () => {
    const r = run(T13, { beta: 0.1, labelSmoothing: 0.1 });
    expect(r.loss).toBeCloseTo(0.635957, 5);
    expect(r.gradChosen[0]).toBeCloseTo(-0.036257, 6);
    expect(r.gradRejected[0]).toBeCloseTo(0.036257, 6);
  });

  it('spec T13, rDPO (ε = 0.1): loss 0.602207, ∂/∂S_θ(y_w) = −0.058757; ε = 0 is plain DPO', () => {
    const r = run(T13, { beta: 0.1, lossType: 'robust', labelSmoothing: 0.1 });
    expect(r.loss).toBeCloseTo(0.602207, 5);
    // [CALC] β·[−(1−ε)σ(−βh) − εσ(βh)]/(1−2ε) = 0.1·(−0.9·0.462570 − 0.1·0.537430)/0.8 = −0.058757.
    expect(r.gradChosen[0]).toBeCloseTo(-0.058757, 6);
    expect(r.gradRejected[0]).toBeCloseTo(0.058757, 6);
    const plain = run(T13, { lossType: 'robust', labelSmoothing: 0 });
    expect(plain.loss).toBeCloseTo(0.620957, 5);
    expect(plain.gradChosen[0]).toBeCloseTo(-0.046257, 6);
  });

  it('spec T13, IPO with sums: (1.5 − 5)² = 12.25 and ∂/∂h = −7.0', () => {
    const r = run(T13, { beta: 0.1, lossType: 'ipo', ipoNormalization: 'sum' });
    expect(r.loss).toBeCloseTo(12.25, 4);
    expect(r.gradChosen[0]).toBeCloseTo(-7, 5); // ∂h/∂S_θ(y_w) = 1
    expect(r.gradRejected[0]).toBeCloseTo(7, 5);
  });

  it('IPO with per-token means (the default): h = 1/4 − (−0.5)/5 = 0.35 for lengths 4 and 5', () => {
    // [CALC] loss (0.35 − 5)² = 21.6225; ∂/∂S_θ(y_w) = 2(h − 5)/4 = −2.325, ∂/∂S_θ(y_l) = −2(h − 5)/5 = 1.86.
    for (const lengths of [
      { chosenLengths: [4], rejectedLengths: [5] },
      { chosenLengths: tf.tensor1d([4], 'int32'), rejectedLengths: Int32Array.of(5) },
    ]) {
      const r = run(T13, { beta: 0.1, lossType: 'ipo' }, lengths);
      expect(r.loss).toBeCloseTo(21.6225, 3);
      expect(r.logits![0]).toBeCloseTo(0.35, 6);
      expect(r.gradChosen[0]).toBeCloseTo(-2.325, 5);
      expect(r.gradRejected[0]).toBeCloseTo(1.86, 5);
      // Implicit rewards stay the sums' (docs/algorithms.md §3.1), whatever the IPO normalisation.
      expect(r.chosenReward![0]).toBeCloseTo(0.1, 6);
      if (lengths.chosenLengths instanceof tf.Tensor) lengths.chosenLengths.dispose();
    }
  });

  it('is ln 2 for every pair when the policy equals the reference (DPO, cDPO, rDPO); IPO gives 1/(4β²)', () => {
    const s = [-3.5, -20.25, -7, -0.5, -11];
    const t = [-8, -2, -30.5, -6.25, -1];
    const same = { policyChosen: s, policyRejected: t, refChosen: s, refRejected: t };
    for (const options of [
      {},
      { labelSmoothing: 0.2 },
      { lossType: 'robust', labelSmoothing: 0.3 },
    ] as DpoLossOptions[]) {
      const r = run(same, options);
      expect(r.loss).toBeCloseTo(LN2, 6);
      for (const l of r.losses!) expect(l).toBeCloseTo(LN2, 6);
      expect(r.accuracy![0]).toBe(0); // strict r̂_w > r̂_l
      expect(r.margin![0]).toBe(0);
    }
    // DPO at h = 0: ∂/∂S_θ(y_w) = −β/2 per pair, divided by B for the mean.
    const r = run(same, { beta: 0.5 });
    for (const g of r.gradChosen) expect(g).toBeCloseTo(-0.25 / 5, 6);
    expect(run(same, { beta: 0.5, lossType: 'ipo', ipoNormalization: 'sum' }).loss).toBeCloseTo(1, 5);
  });

  it('averages per-pair losses over the batch', () => {
    const two = {
      policyChosen: [-10, -4],
      policyRejected: [-12, -3],
      refChosen: [-11, -4],
      refRejected: [-11.5, -4],
    };
    const r = run(two, { beta: 0.1 });
    // Pair 2: h = 0 − 1 = −1 → softplus(0.1) = 0.744397.
    expect(r.losses![0]).toBeCloseTo(0.620957, 5);
    expect(r.losses![1]).toBeCloseTo(0.744397, 5);
    expect(r.loss).toBeCloseTo((0.620957 + 0.744397) / 2, 5);
    expect(r.gradChosen[0]).toBeCloseTo(-0.046257 / 2, 6);
    expect(r.accuracy![0]).toBe(0.5);
  });

  it('soft labels: p = 0.7 gives 0.7·softplus(−βh) + 0.3·softplus(βh); swapping sides with p → 1 − p changes nothing', () => {
    // [CALC] 0.7·0.620957 + 0.3·0.770957 = 0.665957; gradient −β(pσ(−βh) − (1 − p)σ(βh)) = −0.016257.
    const r = run(T13, { beta: 0.1 }, { preference: [0.7] });
    expect(r.loss).toBeCloseTo(0.665957, 5);
    expect(r.gradChosen[0]).toBeCloseTo(-0.016257, 6);
    const swapped = run(
      {
        policyChosen: T13.policyRejected,
        policyRejected: T13.policyChosen,
        refChosen: T13.refRejected,
        refRejected: T13.refChosen,
      },
      { beta: 0.1 },
      { preference: [0.3] },
    );
    expect(swapped.loss).toBeCloseTo(r.loss, 6);
    expect(swapped.gradRejected[0]).toBeCloseTo(r.gradChosen[0]!, 6);
    // p = 1 is the hard label exactly; IPO soft labels: 0.7·(1.5 − 5)² + 0.3·(−1.5 − 5)² = 21.25.
    expect(run(T13, { beta: 0.1 }, { preference: [1] }).loss).toBeCloseTo(0.620957, 5);
    expect(run(T13, { lossType: 'ipo', ipoNormalization: 'sum' }, { preference: [0.7] }).loss).toBeCloseTo(
      21.25,
      3,
    );
  });

  it('stays finite for huge log-ratio gaps (softplus form of log σ)', () => {
    const far = {
      policyChosen: [-10, -5000],
      policyRejected: [-5000, -10],
      refChosen: [-10, -10],
      refRejected: [-10, -10],
    };
    const r = run(far, { beta: 1, labelSmoothing: 0.1 });
    expect(Number.isFinite(r.loss)).toBe(true);
    // Pair 1: h = 4990 → 0.9·0 + 0.1·4990; pair 2: h = −4990 → 0.9·4990 + 0.
    expect(r.loss).toBeCloseTo((499 + 4491) / 2, 0);
    for (const g of [...r.gradChosen, ...r.gradRejected]) expect(Number.isFinite(g)).toBe(true);
    expect(r.gradChosen[0]).toBeCloseTo(0.1 / 2, 5); // −β[(1−ε)σ(−βh) − εσ(βh)] = +0.1, halved by the mean
  });

  it('rejects bad inputs and options with messages naming the field', () => {
    const t = (v: number[]) => tf.tensor1d(v);
    const ok = {
      policyChosen: t([-1, -2]),
      policyRejected: t([-3, -4]),
      refChosen: t([-1, -2]),
      refRejected: t([-3, -4]),
    };
    try {
      expect(() => dpoLoss(ok, { beta: 0 })).toThrow(/`beta` must be a finite number > 0/);
      expect(() => dpoLoss(ok, { beta: NaN })).toThrow(/`beta`/);
      expect(() => dpoLoss(ok, { labelSmoothing: 0.5 })).toThrow(/`labelSmoothing` must be in \[0, 0\.5\)/);
      expect(() => dpoLoss(ok, { labelSmoothing: -0.1 })).toThrow(/`labelSmoothing`/);
      expect(() => dpoLoss(ok, { lossType: 'ipo', labelSmoothing: 0.1 })).toThrow(
        /IPO has no label smoothing/,
      );
      expect(() => dpoLoss(ok, { lossType: 'hinge' as never })).toThrow(
        /`lossType` must be one of 'sigmoid', 'ipo', 'robust'/,
      );
      expect(() => dpoLoss(ok, { label_smoothing: 0.1 } as never)).toThrow(
        /unknown option `options\.label_smoothing`/,
      );
      expect(() => dpoLoss(ok, { lossType: 'ipo' })).toThrow(
        /pass inputs\.chosenLengths and inputs\.rejectedLengths/,
      );
      expect(() =>
        dpoLoss({ ...ok, chosenLengths: [3, 0], rejectedLengths: [1, 1] }, { lossType: 'ipo' }),
      ).toThrow(/`chosenLengths`\[1\] = 0/);
      expect(() => dpoLoss({ ...ok, refRejected: t([1]) })).toThrow(
        /`refRejected` has shape \[1\], but `policyChosen` is \[2\]/,
      );
      const m = tf.tensor2d([[1, 2]]);
      expect(() => dpoLoss({ ...ok, policyChosen: m as unknown as tf.Tensor1D })).toThrow(
        /`policyChosen` must have rank 1/,
      );
      m.dispose();
      const i = tf.tensor1d([1, 2], 'int32');
      expect(() => dpoLoss({ ...ok, refChosen: i })).toThrow(/`refChosen` must be float32/);
      i.dispose();
      expect(() => dpoLoss({ ...ok, policyRejected: [1, 2] as unknown as tf.Tensor1D })).toThrow(
        /`policyRejected` must be a tf\.Tensor \[B\]/,
      );
      expect(resolveDpoLossOptions(undefined)).toEqual({
        beta: 0.1,
        lossType: 'sigmoid',
        labelSmoothing: 0,
        ipoNormalization: 'mean',
      });
    } finally {
      tf.dispose(Object.values(ok));
    }
  });

  it('leaks no tensors under tf.variableGrads', async () => {
    const pc = tf.variable(tf.tensor1d([-10, -3]));
    const pr = tf.variable(tf.tensor1d([-12, -4]));
    const rc = tf.tensor1d([-11, -3]);
    const rr = tf.tensor1d([-11.5, -4]);
    const p = tf.tensor1d([0.9, 0.6]);
    try {
      await assertNoLeaks(
        () => {
          const { value, grads } = tf.variableGrads(
            () =>
              dpoLoss(
                { policyChosen: pc, policyRejected: pr, refChosen: rc, refRejected: rr, preference: p },
                { lossType: 'robust', labelSmoothing: 0.1 },
              ).loss,
            [pc, pr],
          );
          tf.dispose([value, ...Object.values(grads)]);
        },
        { label: 'dpoLoss + gradients' },
      );
      // Outside a gradient scope every returned tensor is the caller's: disposing them leaves the count flat.
      await assertNoLeaks(
        () =>
          dpoLoss(
            {
              policyChosen: pc,
              policyRejected: pr,
              refChosen: rc,
              refRejected: rr,
              chosenLengths: [2, 3],
              rejectedLengths: [4, 1],
            },
            { lossType: 'ipo' },
          ),
        {
          label: 'dpoLoss result',
        },
      );
    } finally {
      tf.dispose([pc, pr, rc, rr, p]);
    }
  });
});
