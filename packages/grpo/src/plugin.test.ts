import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { computeLogprobs, generate, type RolloutMinibatch } from '@relign/rollout';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { createInstance, resolvePlugin, resolvePluginConfig } from '@relign/core';
import {
  countChangedParameters as changed,
  describeConformance,
  CONFORMANCE_DEFAULTS,
  snapshotParameters as snapshot,
} from '@relign/core/testing';
import plugin, { grpoPlugin } from './index.js';

describe('grpo plugin', () => {
  it("is the default export, with TRL's GRPOConfig defaults and group requirements", () => {
    expect(plugin).toBe(grpoPlugin);
    expect(plugin.name).toBe('grpo');
    const defaults = resolvePluginConfig(plugin, {});
    expect(defaults).toEqual({
      lr: 1e-6,
      numGenerations: 8,
      numIterations: 1,
      groupsPerMinibatch: 0,
      clipRange: 0.2,
      clipRangeHigh: 0,
      beta: 0,
      lossType: 'dapo',
      scaleRewards: 'group',
      maxGradNorm: 1,
      weightDecay: 0,
      adamBeta1: 0.9,
      adamBeta2: 0.999,
      adamEps: 1e-8,
    });
    // β = 0 (TRL): no reference needed; the run's default β is 0.
    expect(plugin.requirements(defaults)).toEqual({
      responsesPerPrompt: 8,
      referenceLogprobs: false,
      valueHead: false,
      klCoef: 0,
    });
    expect(plugin.requirements(resolvePluginConfig(plugin, { beta: 0.04, numGenerations: 4 }))).toEqual({
      responsesPerPrompt: 4,
      referenceLogprobs: true,
      valueHead: false,
      klCoef: 0.04,
    });
    expect(() => resolvePluginConfig(plugin, { lossType: 'ppo' })).toThrow(/'lossType' must be one of/);
    expect(() => resolvePluginConfig(plugin, { numGenerations: 1 })).toThrow(/'numGenerations'/);
  });

  it("is found by the registry under the name 'grpo' (the package @relign/grpo)", async () => {
    expect(await resolvePlugin('grpo')).toBe(grpoPlugin);
  });
});

// Small groups (G = 4), two groups per minibatch and μ = 2 exercise the seeded shuffle and the ratio.
const SMALL = { numGenerations: 4, numIterations: 2, groupsPerMinibatch: 2, lr: 1e-3 };

describe.each(TEST_BACKENDS)('grpo on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  // TRL's β = 0: no reference log-probs, so the run's β must be 0 too (the suite's default is P3O's 0.05).
  describeConformance({ describe, it }, plugin, { config: SMALL, klCoef: 0 });
  // The paper's β = 0.04 with its per-completion aggregation: reference log-probs and the k3 term.
  describe('with beta 0.04 and lossType grpo', () => {
    describeConformance({ describe, it }, plugin, {
      config: { ...SMALL, beta: 0.04, lossType: 'grpo' },
      klCoef: 0.04,
    });
  });

  const models: CausalLM[] = [];
  afterEach(() => tf.dispose(models.splice(0) as unknown as tf.Tensor[]));
  const pair = (): { policy: CausalLM; reference: CausalLM } => {
    const base = CausalLM.create(CONFORMANCE_DEFAULTS.model, 7);
    const policy = base.clone();
    const reference = base.clone({ trainable: false });
    base.dispose();
    models.push(policy, reference);
    return { policy, reference };
  };
  /** A fresh rollout of G = 4 completions per prompt with reference log-probs and `rewards(row)`. */
  const rollout = async (
    policy: CausalLM,
    reference: CausalLM,
    rewards: (row: number) => number,
  ): Promise<RolloutMinibatch> => {
    const batch = await generate(policy, CONFORMANCE_DEFAULTS.prompts, {
      maxNewTokens: 6,
      temperature: 1,
      stopTokenIds: [0],
      responsesPerPrompt: 4,
      seed: 5,
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
  };

  it("reports TRL's metrics and ratio 1 on a fresh rollout; μ × minibatches optimizer steps", async () => {
    const { policy, reference } = pair();
    // Groups 0 and 1 have distinct rewards; groups 2 and 3 all-equal (no signal: frac_reward_zero_std 0.5).
    const batch = await rollout(policy, reference, (b) => (b < 8 ? b % 4 : 1));
    const { instance } = createInstance(plugin, { policy, reference, seed: 2 }, { ...SMALL, beta: 0.04 });
    try {
      const ev = await instance.evaluate(batch, { klCoef: 0.04, policyVersion: 0 });
      expect(ev['reward']).toBeCloseTo((2 * 6 + 8) / 16, 12);
      expect(ev['frac_reward_zero_std']).toBe(0.5);
      expect(ev['reward_std']).toBeCloseTo(Math.sqrt(5 / 3) / 2, 12); // std of [0,1,2,3] twice, 0 twice
      expect(ev['kl']).toBeCloseTo(0, 6); // policy = reference
      expect(ev['clip_ratio/region_mean']).toBe(0);
      for (const k of ['policy/ratio_mean', 'policy/ratio_min', 'policy/ratio_max'])
        expect(Math.abs(ev[k]! - 1)).toBeLessThan(1e-4);
      expect(ev['completions/max_length']).toBeLessThanOrEqual(6);
      const before = snapshot(policy);
      const m = await instance.update(batch, { klCoef: 0.04, policyVersion: 0 });
      // 4 groups, 2 per minibatch, μ = 2: four AdamW steps.
      expect(m['train/optimizer_steps']).toBe(4);
      expect(m['train/skipped_steps']).toBe(0);
      expect(m['train/lr']).toBe(1e-3);
      expect(m['train/grad_norm']).toBeGreaterThan(0);
      // The second pass sees ratios away from 1 (the importance ratio of docs/algorithms.md §8.2).
      expect(m['policy/ratio_max']).toBeGreaterThan(1);
      expect(changed(before, snapshot(policy))).toBeGreaterThan(100);
      await expect(
        instance.update({ ...batch, responsesPerPrompt: 2 }, { klCoef: 0.04, policyVersion: 1 }),
      ).rejects.toThrow(
        /grpo\.update: batch\.responsesPerPrompt is 2; this GRPO instance was configured with numGenerations 4/,
      );
      await expect(
        instance.update({ ...batch, refLogprobs: undefined }, { klCoef: 0.04, policyVersion: 1 }),
      ).rejects.toThrow(/grpo\.update: context\.klCoef \(β\) is 0\.04 but batch\.refLogprobs is missing/);
      await expect(instance.evaluate(batch, { klCoef: -1, policyVersion: 1 })).rejects.toThrow(
        /context\.klCoef \(β\) must be a finite number >= 0/,
      );
    } finally {
      instance.dispose();
    }
  });

  it('an update on groups with all-equal rewards and β = 0 leaves every parameter unchanged (A = 0)', async () => {
    const { policy, reference } = pair();
    const flat = await rollout(policy, reference, (b) => Math.floor(b / 4)); // equal within each group
    const { instance } = createInstance(plugin, { policy, reference, seed: 3 }, SMALL);
    const before = snapshot(policy);
    try {
      const m = await instance.update(flat, { klCoef: 0, policyVersion: 0 });
      expect(m['train/grad_norm']).toBe(0);
      expect(changed(before, snapshot(policy))).toBe(0);
      // Not vacuous: distinct rewards in each group move the parameters.
      await instance.update(await rollout(policy, reference, (b) => b % 4), { klCoef: 0, policyVersion: 1 });
      expect(changed(before, snapshot(policy))).toBeGreaterThan(100);
    } finally {
      instance.dispose();
    }
  });
});
