import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { computeLogprobs, generate, type RolloutMinibatch } from '@relign/rollout';
import { AdamW, stopGradient } from '@relign/tensor';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { definePlugin, createInstance, type AlgorithmPlugin } from '../plugin.js';
import { configSchema, enumField, integerField, numberField } from '../config.js';
import { pairTensors, splitPairs, validatePairBatch } from './batch.js';
import type { PairwiseOptimizerConfig } from './config.js';
import { adamwStep, MetricMean, PairwiseOptimizer, type PairwiseLoss } from './optimizer-loop.js';
import { checkPairRollout, oldLogRatios, pairRewardDifferences, sequenceLogRatios } from './rollout.js';
import { CONFORMANCE_DEFAULTS, describeConformance } from '../testing/index.js';

const MODEL = CONFORMANCE_DEFAULTS.model;
const PROMPTS = CONFORMANCE_DEFAULTS.prompts;

/**
 * A minimal pairwise loss for exercising the machinery: the unclipped on-policy pairwise policy gradient
 * `−mean(q·(L1 − L2))/2` (docs/algorithms.md §1.3) with `q = (r1 − r2) − β(L1 − L2)` detached, and the IS-ratio statistics
 * the conformance suite reads. `nan: true` makes the loss NaN (for the skip path).
 */
function ppgLoss(nan = false): PairwiseLoss {
  return (input, klCoef) =>
    tf.tidy(() => {
      const [l1, l2] = input.logRatio;
      const [o1, o2] = input.oldLogRatio;
      const [r1, r2] = input.reward;
      // q = (r1 − r2) − β(L1 − L2), detached (docs/algorithms.md §1.2)
      const q = tf.sub(tf.sub(r1, r2), tf.mul(tf.sub(stopGradient(l1), stopGradient(l2)), klCoef));
      let loss = tf.mul(tf.mean(tf.mul(q, tf.sub(l1, l2))), -0.5) as tf.Scalar;
      if (nan) loss = tf.mul(loss, NaN);
      const ratio = tf.exp(tf.concat([tf.sub(stopGradient(l1), o1), tf.sub(stopGradient(l2), o2)]));
      return {
        loss,
        stats: {
          'loss/policy': tf.clone(loss),
          'policy/ratio_mean': tf.mean(ratio) as tf.Scalar,
          'policy/ratio_min': tf.min(ratio) as tf.Scalar,
          'policy/ratio_max': tf.max(ratio) as tf.Scalar,
          'toy/q_mean': tf.mean(q) as tf.Scalar,
        },
      };
    });
}

type ToyConfig = PairwiseOptimizerConfig;
const toySchema = configSchema({
  lr: numberField({ default: 1e-3, min: 0, exclusiveMin: true, description: 'lr' }),
  epochs: integerField({ default: 2, min: 1, description: 'epochs' }),
  pairsPerMinibatch: integerField({ default: 2, min: 1, description: 'pairs per minibatch' }),
  maxGradNorm: numberField({ default: 1, min: 0, exclusiveMin: true, description: 'grad clip' }),
  weightDecay: numberField({ default: 0, min: 0, description: 'weight decay' }),
  adamBeta1: numberField({ default: 0.9, min: 0, max: 1, exclusiveMax: true, description: 'β1' }),
  adamBeta2: numberField({ default: 0.95, min: 0, max: 1, exclusiveMax: true, description: 'β2' }),
  adamEps: numberField({ default: 1e-8, min: 0, exclusiveMin: true, description: 'ε' }),
  rewardScaling: enumField({ default: 'none', values: ['none', 'pairwise-std'], description: 'scaling' }),
  rewardClip: numberField({ default: 0, min: 0, description: 'clip' }),
});

function toyPlugin(nan = false): AlgorithmPlugin<ToyConfig> {
  return definePlugin<ToyConfig>({
    name: nan ? 'toy-pairwise-nan' : 'toy-pairwise',
    description: 'pairwise policy gradient on the shared machinery (test)',
    configSchema: toySchema,
    requirements: () => ({ responsesPerPrompt: 2, referenceLogprobs: true, valueHead: false }),
    create: (context, config) =>
      new PairwiseOptimizer({ name: 'toy', metricPrefix: 'toy', context, config, loss: ppgLoss(nan) }),
  });
}

/** A fresh rollout (2 responses per prompt) with reference log-probs and the given rewards per row. */
async function rollout(
  policy: CausalLM,
  reference: CausalLM,
  rewards: (row: number) => number,
): Promise<RolloutMinibatch> {
  const batch = await generate(policy, PROMPTS, {
    maxNewTokens: 5,
    temperature: 1,
    stopTokenIds: [0],
    responsesPerPrompt: 2,
    seed: 3,
  });
  const ref = computeLogprobs(reference, batch);
  const refLogprobs = (await ref.data()) as Float32Array;
  ref.dispose();
  return {
    ...batch,
    rewards: Float64Array.from({ length: batch.batchSize }, (_, b) => rewards(b)),
    refLogprobs,
    policyVersions: new Int32Array(batch.batchSize),
  };
}

function snapshot(model: CausalLM): Map<string, Float32Array> {
  return new Map([...model.variables()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
}

function sameParameters(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  }
  return true;
}

describe('pair rollouts: host helpers', () => {
  // Two pairs, Tr = 3: row lengths 2, 3, 1, 3 (padding entries hold junk that must be ignored).
  const batch = {
    batchSize: 4,
    responsesPerPrompt: 2,
    responseWidth: 3,
    responseLengths: Int32Array.from([2, 3, 1, 3]),
    logprobs: Float32Array.from([-1, -2, 99, -0.5, -0.5, -0.5, -3, 99, 99, -1, -1, -1]),
    refLogprobs: Float32Array.from([-1.5, -1, 99, -1, -1, -1, -2, 99, 99, -1, -1, -1]),
    rewards: Float32Array.from([1, 0, 2, 5]),
  } as unknown as RolloutMinibatch;

  it('oldLogRatios sums ℓ_old − ℓ_ref over each row’s valid tokens only', () => {
    // Row 0: (−1 + 1.5) + (−2 + 1) = −0.5; row 1: 3 × 0.5 = 1.5; row 2: −3 + 2 = −1; row 3: 0.
    expect(Array.from(oldLogRatios(batch))).toEqual([-0.5, 1.5, -1, 0]);
    expect(() => oldLogRatios({ ...batch, refLogprobs: undefined })).toThrow(
      /oldLogRatios: batch\.refLogprobs is missing/,
    );
  });

  it('pairRewardDifferences: r1 − r2 per pair, with the optional raw-score clip', () => {
    expect(Array.from(pairRewardDifferences(batch.rewards))).toEqual([1, -3]);
    expect(Array.from(pairRewardDifferences(batch.rewards, 2))).toEqual([1, 0]); // clip(5) = 2
    // Translation by δ per pair cancels exactly (dyadic values): the clip-free path is invariant.
    expect(Array.from(pairRewardDifferences([1 + 1024, 1024, 2 - 512, 5 - 512]))).toEqual([1, -3]);
    expect(() => pairRewardDifferences([1, 2, 3])).toThrow(/3 rewards is not a whole number of pairs/);
    expect(() => pairRewardDifferences([1, 2], -1)).toThrow(/rewardClip must be a finite number >= 0/);
  });

  it('checkPairRollout names what is missing and the fix', () => {
    expect(() => checkPairRollout({ ...batch, responsesPerPrompt: 4 }, 'algo.update')).toThrow(
      /algo\.update: batch\.responsesPerPrompt is 4; pairwise algorithms need exactly 2 responses per prompt/,
    );
    expect(() => checkPairRollout({ ...batch, refLogprobs: undefined }, 'algo.update')).toThrow(
      /batch\.refLogprobs is missing.*referenceLogprobs: true/,
    );
    expect(() => checkPairRollout({ ...batch, refLogprobs: new Float32Array(5) }, 'f')).toThrow(
      /refLogprobs has 5 entries; its shape \[B, Tr\] = \[4, 3\] needs 12/,
    );
    expect(() => checkPairRollout({ ...batch, rewards: new Float64Array(3) }, 'f')).toThrow(
      /batch\.rewards must be a Float64Array \[B\] = \[4\]/,
    );
  });

  it('MetricMean: means, except _max (max) and _min (min)', () => {
    const m = new MetricMean();
    m.add({ 'loss/policy': 1, 'policy/ratio_max': 1.5, 'policy/ratio_min': 0.9 });
    m.add({ 'loss/policy': 3, 'policy/ratio_max': 1.2, 'policy/ratio_min': 0.7, extra: 4 });
    expect(m.result()).toEqual({
      'loss/policy': 2,
      'policy/ratio_max': 1.5,
      'policy/ratio_min': 0.7,
      extra: 4,
    });
  });
});

describe.each(TEST_BACKENDS)('pairwise tensors on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('validatePairBatch returns B and names a bad field', () => {
    const t = (n: number) => tf.zeros([n]) as tf.Tensor1D;
    const ok = { logRatio: [t(3), t(3)], oldLogRatio: [t(3), t(3)], reward: [t(3), t(3)] };
    expect(validatePairBatch(ok, 'f')).toBe(3);
    expect(() => validatePairBatch({ ...ok, reward: [t(3), t(2)] }, 'f')).toThrow(
      /`input\.reward\[1\]` must have shape \[B\] = \[3\]/,
    );
    tf.dispose([...ok.logRatio, ...ok.oldLogRatio, ...ok.reward]);
  });

  it('splitPairs / pairTensors: rows 2i, 2i + 1 → [y1, y2], differentiably', () => {
    const x = tf.tensor1d([1, 2, 3, 4, 5, 6]);
    const [a, b] = splitPairs(x);
    expect(Array.from(a.dataSync())).toEqual([1, 3, 5]);
    expect(Array.from(b.dataSync())).toEqual([2, 4, 6]);
    const w = tf.tensor1d([10, 20, 30]);
    const g = tf.grad((v: tf.Tensor) => {
      const [p, q] = splitPairs(v as tf.Tensor1D);
      return tf.sub(tf.sum(tf.mul(p, w)), tf.sum(q));
    })(x);
    expect(Array.from(g.dataSync())).toEqual([10, -1, 20, -1, 30, -1]);
    const [c, d] = pairTensors([1, 2, 3, 4]);
    expect([Array.from(c.dataSync()), Array.from(d.dataSync())]).toEqual([
      [1, 3],
      [2, 4],
    ]);
    expect(() => splitPairs(tf.zeros([3]) as tf.Tensor1D)).toThrow(/3 rows is not a whole number of pairs/);
    tf.dispose([x, a, b, w, g, c, d]);
  });

  const models: CausalLM[] = [];
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose();
  });
  const modelPair = () => {
    const base = CausalLM.create(MODEL, 7);
    const policy = base.clone();
    const reference = base.clone({ trainable: false });
    base.dispose();
    models.push(policy, reference);
    return { policy, reference };
  };

  it('sequenceLogRatios = Σ_t m(ℓθ − ℓref) per row; equals L_old on a fresh rollout; differentiable; no leaks', async () => {
    const { policy, reference } = modelPair();
    const batch = await rollout(policy, reference, () => 0);
    // Perturb the reference log-probs so L is not trivially 0: L must move by exactly the row's perturbation sum.
    const shifted = {
      ...batch,
      refLogprobs: batch.refLogprobs!.map((v, i) =>
        i % batch.responseWidth < batch.responseLengths[Math.floor(i / batch.responseWidth)]! ? v - 0.25 : v,
      ),
    };
    const L = sequenceLogRatios(policy, shifted);
    const old = oldLogRatios(shifted);
    const values = L.dataSync();
    for (let b = 0; b < batch.batchSize; b++) {
      expect(values[b]!).toBeCloseTo(0.25 * batch.responseLengths[b]!, 4); // policy = reference
      expect(values[b]!).toBeCloseTo(old[b]!, 4); // ℓθ = ℓ_old on a fresh rollout
    }
    L.dispose();
    const vars = [...policy.trainableVariables().values()];
    const { value, grads } = tf.variableGrads(
      () => tf.sum(sequenceLogRatios(policy, batch)) as tf.Scalar,
      vars,
    );
    const norm = tf.tidy(
      () => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]!,
    );
    expect(norm).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    await assertNoLeaks(() => sequenceLogRatios(policy, batch), { label: 'sequenceLogRatios' });
  });

  it('adamwStep: skips a non-finite loss or gradient or an exploding update without touching parameters, else steps', async () => {
    const p = tf.variable(tf.tensor1d([1, 2]), true, 'pairwise-test/p');
    const trainable = new Map([['p', p]]);
    const opt = new AdamW({ lr: 0.1, weightDecay: 0 });
    const g = tf.tensor1d([1, -1]);
    expect(
      await adamwStep(opt, trainable, { [p.name]: g }, { lr: 0.1, maxGradNorm: 1, loss: NaN }),
    ).toMatchObject({
      gradNorm: NaN,
      skipped: true,
    });
    const bad = tf.tensor1d([Infinity, 0]);
    expect(
      (await adamwStep(opt, trainable, { [p.name]: bad }, { lr: 0.1, maxGradNorm: 1, loss: 0 })).skipped,
    ).toBe(true);
    const exploding = await adamwStep(opt, trainable, { [p.name]: g }, { lr: 1e30, maxGradNorm: 1, loss: 0 });
    expect(exploding.skipped).toBe(true);
    expect(exploding.message).toMatch(/update norm .* exceeds maxUpdateNorm/);
    expect(Array.from(p.dataSync())).toEqual([1, 2]);
    const r = await adamwStep(opt, trainable, { [p.name]: g }, { lr: 0.1, maxGradNorm: 1, loss: 0.5 });
    expect(r.skipped).toBe(false);
    expect(r.gradNorm).toBeCloseTo(Math.SQRT2, 5);
    // First AdamW step: p − lr·sign(g) (m̂/√v̂ = ±1 up to ε).
    Array.from(p.dataSync()).forEach((v, i) => expect(v).toBeCloseTo([0.9, 2.1][i]!, 5));
    opt.dispose();
    tf.dispose([p, g, bad]);
  });

  it('PairwiseOptimizer: a NaN loss skips every step and leaves the policy unchanged', async () => {
    const { policy, reference } = modelPair();
    const batch = await rollout(policy, reference, (b) => b % 3);
    const { instance } = createInstance(
      toyPlugin(true),
      { policy, reference, seed: 1 },
      { epochs: 2, pairsPerMinibatch: 2 },
    );
    const before = snapshot(policy);
    const m = await instance.update(batch, { klCoef: 0.05, policyVersion: 0 });
    instance.dispose();
    expect(m).toMatchObject({ 'train/skipped_steps': 4, 'train/optimizer_steps': 0 });
    expect(m['loss/policy']).toBeUndefined();
    expect(sameParameters(before, snapshot(policy))).toBe(true);
  });

  it("PairwiseOptimizer: 'pairwise-std' divides r1 − r2 by the running std of ±(r1 − r2); evaluate changes no state", async () => {
    const { policy, reference } = modelPair();
    // Rewards per row 0,1,2,0,1,2,0,1 → Δ per pair = [−1, 2, −1, −1]; ±Δ: 8 values, mean 0, Σx² = 14.
    const batch = await rollout(policy, reference, (b) => b % 3);
    const { instance } = createInstance(
      toyPlugin(),
      { policy, reference, seed: 1 },
      { rewardScaling: 'pairwise-std', epochs: 1 },
    );
    try {
      const first = await instance.evaluate(batch, { klCoef: 0, policyVersion: 0 });
      expect(first['toy/reward_scale']).toBeCloseTo(1, 6); // no statistics yet: the identity (docs/algorithms.md §2.3 initial std)
      expect(first['toy/q_mean']).toBeCloseTo(-0.25, 6); // β = 0: q = Δ, mean −0.25
      const m = await instance.update(batch, { klCoef: 0, policyVersion: 0 });
      const std = Math.sqrt(14 / 7); // unbiased std of the 8 values
      expect(m['toy/reward_scale']).toBeCloseTo(std, 5);
      const again = await instance.evaluate(batch, { klCoef: 0, policyVersion: 1 });
      expect(again['toy/reward_scale']).toBeCloseTo(std, 5);
      expect(again['toy/q_mean']).toBeCloseTo(-0.25 / std, 5); // q = Δ / scale
      expect((await instance.evaluate(batch, { klCoef: 0, policyVersion: 1 }))['toy/reward_scale']).toBe(
        again['toy/reward_scale'],
      );
      const none = createInstance(toyPlugin(), { policy, reference, seed: 1 }, { epochs: 1 }).instance;
      expect((await none.update(batch, { klCoef: 0, policyVersion: 1 }))['toy/reward_scale']).toBe(1);
      none.dispose();
    } finally {
      instance.dispose();
    }
  });

  it('PairwiseOptimizer.load rejects a malformed state and keeps its own', () => {
    const { policy, reference } = modelPair();
    const { instance } = createInstance(toyPlugin(), { policy, reference, seed: 1 }, {});
    const s = instance.state();
    expect(() => instance.load({ json: { ...s.json, rng: undefined }, tensors: s.tensors })).toThrow(
      /toy\.load: state\.json\.rng \(the shuffle stream\) is missing/,
    );
    expect(() => instance.load({ json: { ...s.json, updates: -1 }, tensors: s.tensors })).toThrow(
      /state\.json\.updates must be an integer >= 0/,
    );
    const stray = tf.zeros([1]);
    expect(() => instance.load({ json: s.json, tensors: new Map([['m.x', stray]]) })).toThrow(
      /unexpected state tensor 'm\.x'/,
    );
    tf.dispose([stray, ...s.tensors.values()]);
    instance.dispose();
  });

  // The shared machinery alone (no P3O loss) passes the plugin conformance suite.
  describeConformance({ describe, it }, toyPlugin(), { config: { lr: 1e-3 } });
});
