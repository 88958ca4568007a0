import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import type { RolloutMinibatch } from '@relign/rollout';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { createInstance, resolvePluginConfig } from '@relign/core';
import {
  conformanceChecks,
  countChangedParameters as changed,
  describeConformance,
  CONFORMANCE_DEFAULTS,
  pairRollout,
  snapshotParameters as snapshot,
} from '@relign/core/testing';
import plugin, { p3oV1Plugin } from './index.js';

const PROMPTS = CONFORMANCE_DEFAULTS.prompts;

describe('p3o-v1 plugin', () => {
  it('is the default export, with the docs/algorithms.md §1.9 defaults and pairwise requirements', () => {
    expect(plugin).toBe(p3oV1Plugin);
    expect(plugin.name).toBe('p3o-v1');
    expect(resolvePluginConfig(plugin, {})).toEqual({
      lr: 8e-6,
      epochs: 4,
      pairsPerMinibatch: 4,
      clipRange: 0.2,
      ratioClip: 10,
      maxGradNorm: 1,
      weightDecay: 1e-6,
      adamBeta1: 0.9,
      adamBeta2: 0.95,
      adamEps: 1e-8,
      rewardScaling: 'none',
      rewardClip: 0,
    });
    expect(plugin.requirements(resolvePluginConfig(plugin, {}))).toEqual({
      responsesPerPrompt: 2,
      referenceLogprobs: true,
      valueHead: false,
    });
    expect(() => resolvePluginConfig(plugin, { rewardScaling: 'running' })).toThrow(
      /'rewardScaling' must be one of 'none', 'pairwise-std'/,
    );
    expect(() => resolvePluginConfig(plugin, { ratioClip: 1 })).toThrow(/'ratioClip' must be in \(1, inf\)/);
  });
});

describe.each(TEST_BACKENDS)('p3o-v1 on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  // Two minibatches per epoch and two epochs exercise the seeded per-epoch shuffle (checkpointed in state()).
  // lr 1e-3: the determinism check needs parameters that visibly move in 3 updates of a tiny model.
  describeConformance({ describe, it }, plugin, { config: { epochs: 2, pairsPerMinibatch: 2, lr: 1e-3 } });

  it('conformance state round trip with pairwise-std reward scaling (running statistics are checkpointed)', async () => {
    const check = conformanceChecks(plugin, {
      config: { epochs: 1, pairsPerMinibatch: 2, lr: 1e-3, rewardScaling: 'pairwise-std' },
    }).find((c) => c.name === 'state-round-trip')!;
    await check.run();
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

  it('zero gradient where clipping is active: an update on fully clipped pairs leaves every parameter unchanged', async () => {
    const { policy, reference } = pair();
    // Policy = reference, so L_θ = 0 and q = r1 − r2 = +1 for every pair (y1 scored 1, y2 scored 0).
    const fresh = await pairRollout(policy, reference, PROMPTS, (b) => (b % 2 === 0 ? 1 : 0));
    // Move the stored old log-probs so each pair has already moved past the clip in the direction q favours:
    // L1 − L1_old = +0.5, L2 − L2_old = −0.5 → V2: d − d_old = 1 > ε; V1: ρ1 = e^0.5 > 1 + ε, ρ2 = e^−0.5 < 1 − ε.
    const stale: RolloutMinibatch = { ...fresh, logprobs: fresh.logprobs.slice() };
    for (let b = 0; b < fresh.batchSize; b++)
      stale.logprobs[b * fresh.responseWidth]! += b % 2 === 0 ? -0.5 : 0.5;
    const config = { epochs: 2, pairsPerMinibatch: 2, lr: 1e-2, weightDecay: 0 };

    const clipped = createInstance(plugin, { policy, reference, seed: 1 }, config).instance;
    const before = snapshot(policy);
    const m = await clipped.update(stale, { klCoef: 0.05, policyVersion: 0 });
    clipped.dispose();
    expect(m['policy/clipfrac']).toBe(1);
    expect(m['train/optimizer_steps']).toBe(4);
    expect(m['train/grad_norm']).toBe(0);
    expect(changed(before, snapshot(policy))).toBe(0); // exactly: zero gradient → zero AdamW step

    // The same update on the fresh rollout (nothing clipped) moves the parameters: the check above can fail.
    const free = createInstance(plugin, { policy, reference, seed: 1 }, config).instance;
    const m2 = await free.update(fresh, { klCoef: 0.05, policyVersion: 0 });
    free.dispose();
    expect(m2['policy/clipfrac']).toBeLessThan(1);
    expect(m2['train/grad_norm']).toBeGreaterThan(0);
    expect(changed(before, snapshot(policy))).toBeGreaterThan(100);
  });

  it('reports the loss statistics of docs/algorithms.md §1.4 and ratio 1 on a fresh rollout; rejects rollouts that are not pairs', async () => {
    const { policy, reference } = pair();
    const batch = await pairRollout(policy, reference, PROMPTS, (b) => (b % 4) - 1.5); // r1 − r2 = −1 per pair
    const { instance } = createInstance(plugin, { policy, reference, seed: 2 }, { epochs: 1 });
    try {
      const ev = await instance.evaluate(batch, { klCoef: 0.05, policyVersion: 0 });
      // Policy = reference: L = 0, so q = r1 − r2 = −1 exactly; |r1 − r2| = 1.
      expect(ev['p3o/q_mean']).toBe(-1);
      expect(ev['p3o/q_std']).toBe(0);
      expect(ev['p3o/reward_diff_mean']).toBe(1);
      expect(ev['policy/clipfrac']).toBe(0);
      for (const k of ['policy/ratio_mean', 'policy/ratio_min', 'policy/ratio_max'])
        expect(Math.abs(ev[k]! - 1)).toBeLessThan(1e-4);
      expect(ev['p3o/reward_scale']).toBe(1);
      const m = await instance.update(batch, { klCoef: 0.05, policyVersion: 0 });
      // 4 pairs, 4 per minibatch, 1 epoch: one AdamW step at the configured lr.
      expect(m['train/optimizer_steps']).toBe(1);
      expect(m['train/skipped_steps']).toBe(0);
      expect(m['train/lr']).toBe(8e-6);
      expect(Object.keys(m)).toEqual(
        expect.arrayContaining(['loss/policy', 'policy/clipfrac', 'p3o/logratio_gap', 'train/grad_norm']),
      );
      const noRef = { ...batch, refLogprobs: undefined };
      await expect(instance.update(noRef, { klCoef: 0.05, policyVersion: 1 })).rejects.toThrow(
        /p3o-v1\.update: batch\.refLogprobs is missing/,
      );
      const single = { ...batch, responsesPerPrompt: 1 };
      await expect(instance.evaluate(single, { klCoef: 0.05, policyVersion: 1 })).rejects.toThrow(
        /p3o-v1\.evaluate: batch\.responsesPerPrompt is 1; pairwise algorithms need exactly 2/,
      );
      await expect(instance.update(batch, { klCoef: -1, policyVersion: 1 })).rejects.toThrow(
        /context\.klCoef \(β\) must be a finite number >= 0/,
      );
    } finally {
      instance.dispose();
    }
  });
});
