import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import {
  collectRollout,
  createInstance,
  describeField,
  Trainer,
  type AlgorithmPlugin,
  type Metrics,
} from '@relign/core';
import { CONFORMANCE_DEFAULTS, countLowIdsReward, describeConformance } from '@relign/core/testing';
import { CausalLM, ScalarHead, type TokenizedExample } from '@relign/lm';
import {
  collateGroups,
  computeLogprobs,
  computeValues,
  ReplayBuffer,
  type RolloutMinibatch,
} from '@relign/rollout';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import ppoMax, { createPpoMaxPlugin, logprobsAndEntropy } from './index.js';

const MODEL = CONFORMANCE_DEFAULTS.model;
const PROMPTS = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10], [11, 12], [13]];
const KL = { klCoef: 0.05, policyVersion: 0 };
const plugin = ppoMax;

/** A scored rollout of the current policy, as the Trainer hands it to update (one collated minibatch). */
async function rollout(
  policy: CausalLM,
  reference: CausalLM,
  seed: string | number = 1,
  maxNewTokens = 6,
): Promise<RolloutMinibatch> {
  const r = await collectRollout({
    policy,
    reference,
    prompts: PROMPTS,
    reward: countLowIdsReward(),
    generation: { maxNewTokens, temperature: 1, stopTokenIds: [0] },
    responsesPerPrompt: 1,
    seed,
    policyVersion: 0,
  });
  const buffer = new ReplayBuffer({ capacity: PROMPTS.length, responsesPerPrompt: 1 });
  buffer.add(r.batch, { rewards: r.rewards, refLogprobs: r.refLogprobs! });
  return collateGroups(buffer.groups());
}

function snapshot(vars: Map<string, tf.Variable>): Map<string, Float32Array> {
  return new Map([...vars].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let d = 0;
  for (const [n, x] of a) {
    const y = b.get(n)!;
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  }
  return d;
}

/** Policy, reference and an instance of `p` with `config`; `fn` runs with them, then everything is freed. */
async function withInstance(
  config: Record<string, unknown>,
  fn: (f: {
    policy: CausalLM;
    reference: CausalLM;
    instance: ReturnType<typeof createInstance>['instance'];
  }) => Promise<void>,
  p: AlgorithmPlugin = plugin,
  seed = 5,
): Promise<void> {
  const policy = CausalLM.create(MODEL, 7);
  const reference = policy.clone({ trainable: false });
  const { instance } = createInstance(p, { policy, reference, seed }, config);
  try {
    await fn({ policy, reference, instance });
  } finally {
    instance.dispose();
    policy.dispose();
    reference.dispose();
  }
}

const TINY = { criticInit: 'policy', lr: 1e-3, criticLr: 1e-3 } as const;

describe.each(TEST_BACKENDS)('ppo-max on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  // Two epochs of two-response minibatches, split into micro-batches of one: shuffles, accumulation and the
  // critic's own optimizer all go through the suite's state round trip and determinism checks.
  describeConformance({ describe, it }, plugin, {
    config: { ...TINY, epochs: 2, minibatchSize: 2, microBatchSize: 1 },
    invalidConfigs: [
      { config: {}, message: "criticInit 'reward-model'" },
      { config: { criticInit: 'policy', ptxCoef: 0.5 }, message: 'ptxExamples' },
    ],
  });

  it('the loss does not depend on the micro-batch split (evaluate and one update)', async () => {
    const results: {
      metrics: Metrics;
      evalMetrics: Metrics;
      policy: Map<string, Float32Array>;
      critic: Metrics;
    }[] = [];
    let start: Map<string, Float32Array> | undefined;
    for (const microBatchSize of [0, 1, 4]) {
      await withInstance(
        { ...TINY, minibatchSize: 6, microBatchSize, rewardNorm: 'scale' },
        async ({ policy, reference, instance }) => {
          start ??= snapshot(policy.variables());
          const batch = await rollout(policy, reference);
          const evalMetrics = await instance.evaluate(batch, KL);
          const metrics = await instance.update(batch, KL);
          // The critic's loss after the update (evaluate reads it at the new weights).
          const critic = await instance.evaluate(batch, KL);
          results.push({ metrics, evalMetrics, policy: snapshot(policy.variables()), critic });
        },
      );
    }
    const [whole, ...split] = results;
    for (const r of split) {
      for (const key of [
        'loss/policy',
        'loss/value',
        'policy/clipfrac',
        'value/error',
        'policy/ratio_mean',
      ]) {
        expect(Math.abs(r.evalMetrics[key]! - whole!.evalMetrics[key]!), key).toBeLessThan(1e-5);
        expect(Math.abs(r.metrics[key]! - whole!.metrics[key]!), key).toBeLessThan(1e-5);
      }
      // One AdamW step of size ~lr = 1e-3 per parameter: the split changes it by float rounding only.
      expect(maxDiff(r.policy, whole!.policy)).toBeLessThan(2e-5);
      expect(Math.abs(r.critic['loss/value']! - whole!.critic['loss/value']!)).toBeLessThan(1e-4);
    }
    expect(maxDiff(whole!.policy, start!)).toBeGreaterThan(5e-4); // the policy did move
    expect(whole!.metrics['train/optimizer_steps']).toBe(1);
  });

  it('reports the metrics of docs/algorithms.md §2.10 / §4.9 with stable names; ratios are 1 and nothing is clipped on a fresh rollout', async () => {
    await withInstance({ ...TINY, minibatchSize: 3, epochs: 2 }, async ({ policy, reference, instance }) => {
      const batch = await rollout(policy, reference);
      const ev = await instance.evaluate(batch, KL);
      expect(ev['policy/clipfrac']).toBe(0);
      expect(ev['policy/approxkl']).toBeLessThan(1e-6);
      expect(ev['value/clipfrac']).toBe(0);
      const m = await instance.update(batch, KL);
      for (const key of [
        'loss/policy',
        'loss/value',
        'policy/clipfrac',
        'policy/approxkl',
        'policy/ratio_mean',
        'policy/ratio_min',
        'policy/ratio_max',
        'value/clipfrac',
        'value/error',
        'value/mean',
        'ppo/score_mean',
        'ppo/score_raw_mean',
        'ppo/score_raw_std',
        'ppo/reward_running_mean',
        'ppo/reward_running_std',
        'ppo/kl',
        'ppo/non_score_reward',
        'ppo/ref_kl',
        'ppo/perplexity',
        'ppo/perplexity_ref',
        'ppo/response_length',
        'ppo/returns_mean',
        'ppo/returns_var',
        'ppo/advantages_mean',
        'ppo/advantages_var',
        'train/lr',
        'train/critic_lr',
        'train/grad_norm',
        'train/critic_grad_norm',
        'train/optimizer_steps',
        'train/skipped_steps',
        'train/critic_warmup',
      ]) {
        expect(m[key], key).toBeTypeOf('number');
      }
      // 6 responses, minibatches of 3, 2 epochs.
      expect(m['train/optimizer_steps']).toBe(4);
      // Policy = reference at the first rollout: KL 0, perplexities equal, = exp(mean NLL of the samples).
      expect(m['ppo/kl']).toBeCloseTo(0, 5);
      expect(m['ppo/perplexity']).toBeCloseTo(m['ppo/perplexity_ref']!, 4);
      let nll = 0;
      let n = 0;
      for (let b = 0; b < batch.batchSize; b++) {
        for (let t = 0; t < batch.responseLengths[b]!; t++)
          nll -= batch.logprobs[b * batch.responseWidth + t]!;
        n += batch.responseLengths[b]!;
      }
      expect(m['ppo/perplexity']).toBeCloseTo(Math.exp(nll / n), 3);
      expect(m['ppo/response_length']).toBeCloseTo(n / batch.batchSize, 6);
      // rewardNorm 'normalize' with the batch merged first: processed scores have mean ~0 on the first batch.
      expect(Math.abs(m['ppo/score_mean']!)).toBeLessThan(1e-5);
      expect(m['ppo/reward_running_mean']).toBeCloseTo(m['ppo/score_raw_mean']!, 5);
      expect(m['train/lr']).toBe(1e-3);
    });
  });

  it('critic warm-up: the first K updates train only the critic', async () => {
    await withInstance({ ...TINY, criticWarmupIterations: 1 }, async ({ policy, reference, instance }) => {
      const critic0 = await instance.evaluate(await rollout(policy, reference), KL);
      const before = snapshot(policy.variables());
      const m1 = await instance.update(await rollout(policy, reference, 2), KL);
      expect(m1['train/critic_warmup']).toBe(1);
      expect(m1['loss/policy']).toBeUndefined();
      expect(maxDiff(snapshot(policy.variables()), before)).toBe(0);
      const critic1 = await instance.evaluate(await rollout(policy, reference), KL);
      expect(critic1['value/mean']).not.toBe(critic0['value/mean']); // the critic trained
      const m2 = await instance.update(await rollout(policy, reference, 3), KL);
      expect(m2['train/critic_warmup']).toBe(0);
      expect(maxDiff(snapshot(policy.variables()), before)).toBeGreaterThan(1e-4);
    });
  });

  it("runs with its paper default (criticInit 'reward-model') in a plain Trainer given resources: { rewardModel }", async () => {
    const policy = CausalLM.create(MODEL, 7);
    const rewardModel = {
      backbone: CausalLM.create(MODEL, 99),
      head: ScalarHead.create(MODEL.n_embd, { seed: 3, bias: false }),
    };
    const options = {
      policy,
      prompts: PROMPTS,
      reward: countLowIdsReward(),
      plugin, // the plain plugin (the package's default export): no createPpoMaxPlugin needed
      pluginConfig: { lr: 1e-3, criticLr: 1e-3, minibatchSize: 3 },
      generation: { maxNewTokens: 4, stopTokenIds: [0] },
      promptsPerIteration: 3,
      iterations: 1,
    };
    try {
      const without = new Trainer(options);
      await expect(without.init()).rejects.toThrow(
        /ppo-max: this algorithm needs the resource 'rewardModel' \(criticInit 'reward-model', the default.*Pass it to the Trainer as resources: \{ rewardModel \}/,
      );
      without.dispose();
      const trainer = new Trainer({ ...options, resources: { rewardModel } });
      try {
        const m = await trainer.step();
        expect(m['train/optimizer_steps']).toBeGreaterThan(0);
        // The critic is a trained copy: its values started as the reward model's at each response prefix.
        expect(Number.isFinite(m['value/mean'])).toBe(true);
      } finally {
        trainer.dispose();
      }
    } finally {
      policy.dispose();
      rewardModel.backbone.dispose();
      rewardModel.head.dispose();
    }
  });

  it("criticInit 'reward-model': the critic starts as a copy of the reward model, which training leaves unchanged", async () => {
    const rm = {
      backbone: CausalLM.create(MODEL, 99),
      head: ScalarHead.create(MODEL.n_embd, { seed: 3, bias: false }),
    };
    const rmBefore = snapshot(new Map([...rm.backbone.variables(), ...rm.head.variables()]));
    try {
      const p = createPpoMaxPlugin({ rewardModel: rm });
      await withInstance(
        { lr: 1e-3, criticLr: 1e-2 },
        async ({ policy, reference, instance }) => {
          const batch = await rollout(policy, reference);
          const v = computeValues(rm.backbone, rm.head, batch);
          const values = await v.data();
          v.dispose();
          let sum = 0;
          let n = 0;
          for (let b = 0; b < batch.batchSize; b++) {
            for (let t = 0; t < batch.responseLengths[b]!; t++) sum += values[b * batch.responseWidth + t]!;
            n += batch.responseLengths[b]!;
          }
          const ev = await instance.evaluate(batch, KL);
          expect(ev['value/mean']).toBeCloseTo(sum / n, 5);
          await instance.update(batch, KL);
          const after = await instance.evaluate(batch, KL);
          expect(Math.abs(after['value/mean']! - sum / n)).toBeGreaterThan(1e-4);
        },
        p,
      );
      expect(maxDiff(snapshot(new Map([...rm.backbone.variables(), ...rm.head.variables()])), rmBefore)).toBe(
        0,
      );
      // A reward model with another vocabulary cannot read the policy's tokens.
      const other = {
        backbone: CausalLM.create({ ...MODEL, vocab_size: 40 }, 1),
        head: ScalarHead.create(MODEL.n_embd),
      };
      const q = createPpoMaxPlugin({ rewardModel: other });
      await expect(withInstance({}, async () => {}, q)).rejects.toThrow(
        /vocab_size \(40\) differs from the policy's \(32\)/,
      );
      other.backbone.dispose();
      other.head.dispose();
    } finally {
      rm.backbone.dispose();
      rm.head.dispose();
    }
  });

  it('PPO-ptx: the NLL on the SFT examples is reported and falls when λ_ptx is large', async () => {
    // A fixed "SFT" sequence the policy can learn: prompt [1, 2], completion [20, 21, 22, 0].
    const ex: TokenizedExample = { ids: Int32Array.from([1, 2, 20, 21, 22, 0]), promptLength: 2, length: 6 };
    const p = createPpoMaxPlugin({ ptxExamples: [ex] });
    await withInstance(
      { ...TINY, lr: 1e-2, ptxCoef: 10 },
      async ({ policy, reference, instance }) => {
        const nll: number[] = [];
        for (let k = 0; k < 4; k++) {
          const m = await instance.update(await rollout(policy, reference, k), KL);
          nll.push(m['loss/ptx']!);
        }
        expect(nll.every(Number.isFinite)).toBe(true);
        expect(nll[3]!).toBeLessThan(nll[0]! - 0.5);
      },
      p,
    );
  });

  it('entropy term: the training pass gives the same log-probs as computeLogprobs; a large bonus raises the entropy', async () => {
    await withInstance({ ...TINY, lr: 1e-2, entropyCoef: 5 }, async ({ policy, reference, instance }) => {
      const batch = await rollout(policy, reference);
      const [a, b] = tf.tidy(() => {
        const { logprobs, entropy } = logprobsAndEntropy(policy, batch);
        entropy.dispose();
        return [logprobs, computeLogprobs(policy, batch)];
      });
      const [x, y] = [await a.data(), await b.data()];
      tf.dispose([a, b]);
      for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(1e-6);
      const h: number[] = [];
      for (let k = 0; k < 4; k++)
        h.push((await instance.update(await rollout(policy, reference, k), KL))['policy/entropy']!);
      expect(h[3]!).toBeGreaterThan(h[0]! + 0.05);
    });
  });

  it('update and evaluate read tensors only asynchronously (no dataSync/arraySync/bufferSync: issue 15)', async () => {
    const configs = [
      { ...TINY, entropyCoef: 0.01, minibatchSize: 3, microBatchSize: 2 }, // minibatch whitening
      { ...TINY, advantageWhitening: 'rollout', advantageClip: 0.5, epochs: 2, minibatchSize: 4 },
    ];
    for (const config of configs) {
      await withInstance(config, async ({ policy, reference, instance }) => {
        const batch = await rollout(policy, reference);
        const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
        const saved = ['dataSync', 'arraySync', 'bufferSync'].map((k) => [k, proto[k]] as const);
        for (const [k] of saved) {
          proto[k] = () => {
            throw new Error(`synchronous read: ${k}`);
          };
        }
        try {
          const m = await instance.update(batch, KL);
          expect(m['train/optimizer_steps']).toBeGreaterThan(0);
          expect(Number.isFinite((await instance.evaluate(batch, KL))['loss/value'])).toBe(true);
        } finally {
          for (const [k, f] of saved) proto[k] = f;
        }
      });
    }
  });

  it('rejects a batch without reference log-probs, a bad β, and bad options, naming the field', async () => {
    await withInstance(TINY, async ({ policy, reference, instance }) => {
      const batch = await rollout(policy, reference);
      await expect(instance.update({ ...batch, refLogprobs: undefined }, KL)).rejects.toThrow(
        /batch.refLogprobs must be a Float32Array/,
      );
      await expect(instance.update(batch, { klCoef: -1, policyVersion: 0 })).rejects.toThrow(
        /context.klCoef/,
      );
      await expect(instance.update({ ...batch, rewards: new Float64Array(2) }, KL)).rejects.toThrow(
        /batch.rewards must be a Float64Array \[B\] = \[6\]/,
      );
    });
    expect(() => createPpoMaxPlugin({ critic: 1 } as never)).toThrow(/unknown option 'critic'/);
    const bad = createPpoMaxPlugin({
      ptxExamples: [{ ids: Int32Array.from([1, 99]), promptLength: 0, length: 2 }],
    });
    await expect(withInstance({ criticInit: 'policy' }, async () => {}, bad)).rejects.toThrow(
      /ptxExamples\[0\] has token id 99/,
    );
  });
});

describe('ppo-max README', () => {
  it('documents every config switch with its default', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const section = text.slice(text.indexOf('### Every switch'), text.indexOf('## Metrics'));
    const { ppoMaxConfigSchema } = await import('./config.js');
    for (const [key, entry] of Object.entries(ppoMaxConfigSchema.entries)) {
      const field = describeField(entry);
      const row = section.split('\n').find((line) => line.startsWith('|') && line.includes(`\`${key}\``));
      expect(row, `README row for '${key}'`).toBeDefined();
      const quoted = [...row!.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);
      const found =
        typeof field.default === 'number'
          ? quoted.some((q) => q.split(',').some((v) => v.trim() !== '' && Number(v) === field.default))
          : quoted.includes(typeof field.default === 'string' ? `'${field.default}'` : String(field.default));
      expect(found, `README default of '${key}' (${String(field.default)}) in: ${row}`).toBe(true);
    }
  });
});
