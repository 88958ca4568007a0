import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { computeLogprobs, type RolloutMinibatch } from '@relign/rollout';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { createInstance, resolvePluginConfig, Trainer } from '@relign/core';
import {
  CONFORMANCE_DEFAULTS,
  countLowIdsReward,
  countChangedParameters as changed,
  describeConformance,
  pairRollout,
  snapshotParameters as snapshot,
} from '@relign/core/testing';
import plugin, { onlineDpoPlugin } from '../index.js';
import { identicalPairs, selectPairs } from './pairs.js';

const PROMPTS = CONFORMANCE_DEFAULTS.prompts;
const LN2 = Math.log(2);

/** The batch with row 2i + 1 replaced by a copy of row 2i (pair i's two responses identical). */
function makeIdentical(batch: RolloutMinibatch, pairs: number[]): RolloutMinibatch {
  const out: RolloutMinibatch = {
    ...batch,
    responseTokens: batch.responseTokens.slice(),
    responseLengths: batch.responseLengths.slice(),
    logprobs: batch.logprobs.slice(),
    refLogprobs: batch.refLogprobs!.slice(),
    endedWithEos: batch.endedWithEos.slice(),
    truncated: batch.truncated.slice(),
    rewards: batch.rewards.slice(),
  };
  const Tr = batch.responseWidth;
  for (const i of pairs) {
    const [a, b] = [2 * i, 2 * i + 1];
    out.responseTokens.copyWithin(b * Tr, a * Tr, (a + 1) * Tr);
    out.logprobs.copyWithin(b * Tr, a * Tr, (a + 1) * Tr);
    out.refLogprobs!.copyWithin(b * Tr, a * Tr, (a + 1) * Tr);
    out.responseLengths[b] = out.responseLengths[a]!;
    out.endedWithEos[b] = out.endedWithEos[a]!;
    out.truncated[b] = out.truncated[a]!;
    out.rewards[b] = out.rewards[a]!;
  }
  return out;
}

describe('online dpo plugin', () => {
  it('is the default export, with docs/algorithms.md §1.12 loss defaults, P3O optimisation defaults and pairwise requirements', () => {
    expect(plugin).toBe(onlineDpoPlugin);
    expect(plugin.name).toBe('dpo');
    expect(resolvePluginConfig(plugin, {})).toEqual({
      beta: 0, // β from the Trainer (its kl option; 0.1 by default for dpo, below)
      lossType: 'sigmoid',
      labelSmoothing: 0,
      labels: 'hard',
      lr: 8e-6,
      epochs: 4,
      pairsPerMinibatch: 4,
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
      klCoef: 0.1,
    });
    expect(() => resolvePluginConfig(plugin, { beta: -1 })).toThrow(/'beta'/);
    expect(() => resolvePluginConfig(plugin, { labelSmoothing: 0.5 })).toThrow(
      /'labelSmoothing' must be in \[0, 0\.5\)/,
    );
    expect(() => resolvePluginConfig(plugin, { labels: 'bt' })).toThrow(
      /'labels' must be one of 'hard', 'soft'/,
    );
  });
});

describe.each(TEST_BACKENDS)('online dpo on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  // Two minibatches per epoch and two epochs exercise the seeded per-epoch shuffle (checkpointed in state()).
  // lr 1e-3: the determinism check needs parameters that visibly move in 3 updates of a tiny model.
  describeConformance({ describe, it }, plugin, {
    config: { epochs: 2, pairsPerMinibatch: 2, lr: 1e-3 },
    invalidConfigs: [{ config: { lossType: 'ipo', labelSmoothing: 0.1 }, message: 'labelSmoothing' }],
  });

  const models: CausalLM[] = [];
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose();
  });
  const pair = (): { policy: CausalLM; reference: CausalLM } => {
    const base = CausalLM.create(CONFORMANCE_DEFAULTS.model, 7);
    const policy = base.clone();
    const reference = base.clone({ trainable: false });
    base.dispose();
    models.push(policy, reference);
    return { policy, reference };
  };

  it('evaluate at policy = reference: loss ln 2, accuracy 0, ratios 1, scores margin = mean |r1 − r2|', async () => {
    const { policy, reference } = pair();
    const batch = await pairRollout(policy, reference, PROMPTS, (b) => [3, 1, 0, 2, 5, 5, 1, 4][b]!); // |Δ| = 2, 2, 0, 3
    for (const labels of ['hard', 'soft'] as const) {
      const { instance } = createInstance(plugin, { policy, reference, seed: 2 }, { labels, epochs: 1 });
      try {
        const ev = await instance.evaluate(batch, { klCoef: 0.05, policyVersion: 0 });
        // h = 0 for every pair, so p·ln 2 + (1 − p)·ln 2 = ln 2 whatever the label.
        expect(ev['loss/policy']).toBeCloseTo(LN2, 5);
        expect(ev['dpo/accuracy']).toBe(0);
        expect(ev['dpo/margin']).toBe(0);
        for (const k of ['policy/ratio_mean', 'policy/ratio_min', 'policy/ratio_max'])
          expect(Math.abs(ev[k]! - 1)).toBeLessThan(1e-4);
        expect(ev['dpo/scores_margin']).toBeCloseTo(7 / 4, 6);
        expect(ev['dpo/tie_fraction']).toBe(0.25);
        // Soft: mean σ(|Δ|) over |Δ| = 2, 2, 0, 3.
        const soft = (2 / (1 + Math.exp(-2)) + 0.5 + 1 / (1 + Math.exp(-3))) / 4;
        expect(ev['dpo/label_mean']).toBeCloseTo(labels === 'hard' ? 1 : soft, 6);
        expect(ev['dpo/beta']).toBe(0.05); // the Trainer's KL coefficient (config beta 0)
        expect(ev['dpo/identical_pairs']).toBe(0);
      } finally {
        instance.dispose();
      }
    }
  });

  it('learns the labelled direction: after updates the chosen (higher-scored) response gains log-ratio over the rejected', async () => {
    const { policy, reference } = pair();
    // Pairs 0 and 2 prefer y2, pairs 1 and 3 prefer y1.
    const batch = await pairRollout(policy, reference, PROMPTS, (b) => [0, 1, 1, 0, 0, 2, 3, 1][b]!);
    const { instance } = createInstance(
      plugin,
      { policy, reference, seed: 3 },
      { epochs: 3, pairsPerMinibatch: 2, lr: 3e-3 },
    );
    try {
      const m = await instance.update(batch, { klCoef: 0.05, policyVersion: 0 });
      expect(m['train/optimizer_steps']).toBe(6);
      expect(m['train/skipped_steps']).toBe(0);
      const ev = await instance.evaluate(batch, { klCoef: 0.05, policyVersion: 1 });
      expect(ev['dpo/accuracy']).toBe(1); // r̂_w > r̂_l for all four pairs
      expect(ev['dpo/margin']).toBeGreaterThan(0.05);
      expect(ev['loss/policy']).toBeLessThan(LN2 - 0.02);
    } finally {
      instance.dispose();
    }
  });

  it("β is the Trainer's KL coefficient (context.klCoef) unless the config sets beta", async () => {
    const { policy, reference } = pair();
    const batch = await pairRollout(policy, reference, PROMPTS, (b) => [0, 1, 1, 0, 0, 2, 3, 1][b]!);
    const fromTrainer = createInstance(
      plugin,
      { policy, reference, seed: 3 },
      { epochs: 1, lr: 3e-3 },
    ).instance;
    try {
      await fromTrainer.update(batch, { klCoef: 0.05, policyVersion: 0 });
      const a = await fromTrainer.evaluate(batch, { klCoef: 0.05, policyVersion: 1 });
      const b = await fromTrainer.evaluate(batch, { klCoef: 0.5, policyVersion: 1 });
      expect([a['dpo/beta'], b['dpo/beta']]).toEqual([0.05, 0.5]);
      // Implicit rewards r̂ = β(S_θ − S_ref): ten times β, ten times the margin; and another loss.
      expect(b['dpo/margin']! / a['dpo/margin']!).toBeCloseTo(10, 3);
      expect(Math.abs(b['loss/policy']! - a['loss/policy']!)).toBeGreaterThan(1e-3);
      await expect(fromTrainer.evaluate(batch, { klCoef: 0, policyVersion: 1 })).rejects.toThrow(
        /Trainer's KL coefficient \(config beta: 0\), which is 0; DPO needs β > 0/,
      );
    } finally {
      fromTrainer.dispose();
    }
    const fixed = createInstance(plugin, { policy, reference, seed: 3 }, { beta: 0.2 }).instance;
    try {
      const a = await fixed.evaluate(batch, { klCoef: 0.05, policyVersion: 1 });
      const b = await fixed.evaluate(batch, { klCoef: 0.5, policyVersion: 1 });
      expect([a['dpo/beta'], b['dpo/beta']]).toEqual([0.2, 0.2]);
      expect(b['loss/policy']).toBe(a['loss/policy']);
    } finally {
      fixed.dispose();
    }
  });

  it("a Trainer without a kl option runs dpo at its paper β 0.1; the Trainer's kl sets it otherwise", async () => {
    for (const kl of [undefined, { kind: 'fixed', value: 0.3 } as const]) {
      const { policy } = pair();
      const trainer = new Trainer({
        policy,
        prompts: PROMPTS,
        reward: countLowIdsReward(),
        plugin,
        pluginConfig: { epochs: 1 },
        generation: { maxNewTokens: 4, stopTokenIds: [0] },
        promptsPerIteration: 2,
        iterations: 1,
        ...(kl ? { kl } : {}),
      });
      try {
        const m = await trainer.step();
        const beta = kl ? 0.3 : 0.1;
        expect(trainer.klCoef).toBe(beta);
        expect(m['dpo/beta']).toBe(beta);
        expect(m['objective/kl_coef']).toBe(beta);
      } finally {
        trainer.dispose();
      }
    }
  });

  it('skips pairs whose two responses are identical (counted), updating exactly as on the other pairs alone', async () => {
    const { policy, reference } = pair();
    const fresh = await pairRollout(policy, reference, PROMPTS, (b) => (b % 3) - 1);
    const batch = makeIdentical(fresh, [0, 2]);
    expect(identicalPairs(batch)).toEqual([true, false, true, false]);
    const config = { epochs: 2, pairsPerMinibatch: 1, lr: 1e-2 };
    const start = snapshot(policy);

    const a = createInstance(plugin, { policy, reference, seed: 9 }, config).instance;
    const m = await a.update(batch, { klCoef: 0.05, policyVersion: 0 });
    a.dispose();
    expect(m['dpo/identical_pairs']).toBe(2);
    expect(m['dpo/identical_fraction']).toBe(0.5);
    expect(m['train/optimizer_steps']).toBe(4); // 2 kept pairs × 2 epochs
    const afterSkip = snapshot(policy);
    expect(changed(start, afterSkip)).toBeGreaterThan(100);

    // Same seed on the kept pairs alone: bit-identical parameters.
    for (const [n, v] of policy.variables()) tf.tidy(() => v.assign(tf.tensor(start.get(n)!, v.shape)));
    const b = createInstance(plugin, { policy, reference, seed: 9 }, config).instance;
    await b.update(selectPairs(batch, [1, 3]), { klCoef: 0.05, policyVersion: 0 });
    b.dispose();
    expect(changed(afterSkip, snapshot(policy))).toBe(0);

    // All pairs identical: no step, parameters untouched, the count accumulates in the checkpointed state.
    const c = createInstance(plugin, { policy, reference, seed: 9 }, config).instance;
    const before = snapshot(policy);
    const all = makeIdentical(fresh, [0, 1, 2, 3]);
    const mc = await c.update(all, { klCoef: 0.05, policyVersion: 1 });
    expect(mc['train/optimizer_steps']).toBe(0);
    expect(mc['dpo/identical_pairs']).toBe(4);
    expect(changed(before, snapshot(policy))).toBe(0);
    await c.update(batch, { klCoef: 0.05, policyVersion: 2 });
    const state = c.state();
    expect(state.json.identicalPairs).toBe(6);
    const ev = await c.evaluate(all, { klCoef: 0.05, policyVersion: 3 });
    expect(ev['dpo/identical_pairs']).toBe(4);
    expect(Number.isFinite(ev['policy/ratio_mean'])).toBe(true);
    tf.dispose([...state.tensors.values()]);
    c.dispose();
  });

  it('selectPairs re-pads a subset whose log-probs equal the same rows of the full batch', async () => {
    const { policy, reference } = pair();
    const batch = await pairRollout(policy, reference, PROMPTS, () => 0, 11);
    const sub = selectPairs(batch, [3, 1]);
    expect(sub.batchSize).toBe(4);
    expect(Array.from(sub.groupIds)).toEqual([
      batch.groupIds[6],
      batch.groupIds[7],
      batch.groupIds[2],
      batch.groupIds[3],
    ]);
    // Prompt 3 = [10] and prompt 1 = [4, 5]: the kept prompts are at most 2 wide.
    expect(sub.promptWidth).toBe(2);
    const full = computeLogprobs(policy, batch);
    const part = computeLogprobs(policy, sub);
    const f = full.arraySync();
    const p = part.arraySync();
    tf.dispose([full, part]);
    [6, 7, 2, 3].forEach((row, k) => {
      for (let t = 0; t < sub.responseLengths[k]!; t++) expect(p[k]![t]).toBeCloseTo(f[row]![t]!, 5);
      expect(p[k]!.slice(0, sub.responseLengths[k]).length).toBe(batch.responseLengths[row]);
    });
    expect(() => selectPairs(batch, [])).toThrow(/no pairs selected/);
    expect(() => selectPairs(batch, [4])).toThrow(/pair index 4 is outside \[0, 4\)/);
  });
});
