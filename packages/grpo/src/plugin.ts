/**
 * The GRPO optimizer plugin (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300; docs/algorithms.md §8), with the
 * Dr. GRPO and DAPO aggregations. Written as a third-party plugin would be: only `@relign/core`'s public API
 * (definePlugin, the config builders, checkKlCoef) and the public exports of tensor, lm and rollout.
 *
 * Per rollout: G completions per prompt, one reward each; group advantages on the host in float64
 * (`groupAdvantages`, §8.1); then μ = `numIterations` passes over the rollout in seeded minibatches of whole
 * groups, each an AdamW step (`guardedStep`) on `grpoLoss` (§8.2) with the importance ratio against the
 * rollout's log-probs. No value function; the KL enters the loss (k3), not the reward.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  adamwStep,
  loadOptimizerPluginState,
  MetricMean,
  optimizerPluginState,
  checkKlCoef,
  configSchema,
  definePlugin,
  enumField,
  integerField,
  numberField,
  type AlgorithmInstance,
  type InferConfig,
  type Metrics,
  type PluginState,
  type UpdateContext,
} from '@relign/core';
import type { CausalLM } from '@relign/lm';
import { computeLogprobs, ReplayBuffer, responseMask, type RolloutMinibatch } from '@relign/rollout';
import { AdamW, createRng, type Rng } from '@relign/tensor';
import { groupAdvantages } from './advantages.js';
import { GRPO_LOSS_TYPES, grpoLoss } from './loss.js';
import { rolloutMetrics } from './metrics.js';

/** The config: TRL's `GRPOConfig` defaults (docs/algorithms.md §8), TRL's names in camelCase where they exist. */
export const grpoConfigSchema = configSchema({
  lr: numberField({
    default: 1e-6,
    min: 0,
    exclusiveMin: true,
    description: 'AdamW learning rate, constant (TRL learning_rate)',
  }),
  numGenerations: integerField({
    default: 8,
    min: 2,
    max: 256,
    description: 'completions per prompt G (TRL num_generations); the group of §8.1',
  }),
  numIterations: integerField({
    default: 1,
    min: 1,
    max: 100,
    description: 'μ, passes over each rollout (TRL num_iterations); > 1 makes the importance ratio matter',
  }),
  groupsPerMinibatch: integerField({
    default: 0,
    min: 0,
    description: 'prompts (groups of G) per optimizer step; 0 = the whole rollout in one step',
  }),
  clipRange: numberField({
    default: 0.2,
    min: 0,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    description: 'ε_low: ratio clipped below at 1 − ε (TRL epsilon)',
  }),
  clipRangeHigh: numberField({
    default: 0,
    min: 0,
    description: 'ε_high: ratio clipped above at 1 + ε_high; 0 = clipRange (TRL epsilon_high; DAPO 0.28)',
  }),
  beta: numberField({
    default: 0,
    min: 0,
    description:
      "β of the k3 KL term (TRL beta; paper 0.04): the run's default β, and > 0 asks for reference log-probs",
  }),
  lossType: enumField({
    default: 'dapo',
    values: GRPO_LOSS_TYPES,
    description: "aggregation of §8.2 (TRL loss_type; the paper's is 'grpo')",
  }),
  scaleRewards: enumField({
    default: 'group',
    values: ['group', 'batch', 'none'] as const,
    description: "divisor of the centred rewards (TRL scale_rewards; 'none' = Dr. GRPO)",
  }),
  maxGradNorm: numberField({ default: 1, min: 0, exclusiveMin: true, description: 'global grad-norm clip' }),
  weightDecay: numberField({ default: 0, min: 0, description: 'AdamW decoupled weight decay' }),
  adamBeta1: numberField({ default: 0.9, min: 0, max: 1, exclusiveMax: true, description: 'AdamW β1' }),
  adamBeta2: numberField({ default: 0.999, min: 0, max: 1, exclusiveMax: true, description: 'AdamW β2' }),
  adamEps: numberField({ default: 1e-8, min: 0, exclusiveMin: true, description: 'AdamW ε' }),
});

/** GRPO settings, as declared by {@link grpoConfigSchema}. */
export type GrpoConfig = InferConfig<typeof grpoConfigSchema>;

/**
 * The GRPO plugin (registry name `grpo`). β: the loss uses the run's β (`UpdateContext.klCoef`, so the logged
 * `objective/kl_coef` is the one applied); `beta` is its default (`requirements().klCoef`) and decides whether
 * reference log-probs are needed.
 */
export const grpoPlugin = definePlugin<GrpoConfig>({
  name: 'grpo',
  description:
    'GRPO: group-relative policy optimization (Shao et al. 2024, arXiv 2402.03300), with Dr. GRPO and DAPO losses',
  configSchema: grpoConfigSchema,
  requirements: (c) => ({
    responsesPerPrompt: c.numGenerations,
    referenceLogprobs: c.beta > 0,
    valueHead: false,
    klCoef: c.beta,
  }),
  create: (context, config) => new Grpo(context.policy, config, context.seed),
});

const STAT_NAMES = [
  'loss/policy',
  'kl',
  'clip_ratio/low_mean',
  'clip_ratio/high_mean',
  'clip_ratio/region_mean',
  'policy/ratio_mean',
  'policy/ratio_min',
  'policy/ratio_max',
] as const;

class Grpo implements AlgorithmInstance {
  private readonly optimizer: AdamW;
  private rng: Rng;
  private updates = 0;
  private skipped = 0;

  constructor(
    private readonly policy: CausalLM,
    private readonly config: GrpoConfig,
    seed: number | string,
  ) {
    this.optimizer = new AdamW({
      lr: config.lr,
      weightDecay: config.weightDecay,
      beta1: config.adamBeta1,
      beta2: config.adamBeta2,
      eps: config.adamEps,
    });
    this.rng = createRng(seed);
  }

  /** Checks the batch and β; returns β and the rollout metrics TRL logs (reward, groups, lengths). */
  private check(
    batch: RolloutMinibatch,
    context: UpdateContext,
    fn: string,
  ): { beta: number; metrics: Metrics } {
    const beta = checkKlCoef(context, fn);
    const G = this.config.numGenerations;
    if (batch?.responsesPerPrompt !== G) {
      throw new Error(
        `${fn}: batch.responsesPerPrompt is ${String(batch?.responsesPerPrompt)}; this GRPO instance was configured ` +
          `with numGenerations ${G} (requirements().responsesPerPrompt); pass rollouts with ${G} completions per prompt.`,
      );
    }
    if (beta > 0 && batch.refLogprobs === undefined) {
      throw new Error(
        `${fn}: context.klCoef (β) is ${beta} but batch.refLogprobs is missing; set the plugin's beta > 0 so that ` +
          'requirements() asks for reference log-probs, or run with β = 0.',
      );
    }
    return { beta, metrics: rolloutMetrics(batch, G) };
  }

  /**
   * The loss on one minibatch whose `rewards` are the advantages (see `update`); returns the loss and the
   * stacked statistics of {@link STAT_NAMES} (kept, caller-owned). Differentiable inside `variableGrads`.
   */
  private loss(mb: RolloutMinibatch, beta: number): { loss: tf.Scalar; stats: tf.Tensor1D } {
    const shape: [number, number] = [mb.batchSize, mb.responseWidth];
    const oldLogprobs = tf.tensor2d(mb.logprobs, shape);
    const refLogprobs = mb.refLogprobs ? tf.tensor2d(mb.refLogprobs, shape) : undefined;
    const advantages = tf.tensor1d(Float32Array.from(mb.rewards));
    const mask = responseMask(mb);
    const logprobs = computeLogprobs(this.policy, mb);
    const r = grpoLoss(
      { logprobs, oldLogprobs, advantages, mask, ...(refLogprobs ? { refLogprobs } : {}) },
      {
        clipRange: this.config.clipRange,
        clipRangeHigh: this.config.clipRangeHigh > 0 ? this.config.clipRangeHigh : this.config.clipRange,
        beta,
        lossType: this.config.lossType,
        maxCompletionLength: Math.max(mb.options.maxNewTokens, mb.responseWidth),
      },
    );
    const s = r.stats;
    const stats = tf.keep(
      tf.stack([
        r.loss,
        s.kl,
        s.clipRatioLow,
        s.clipRatioHigh,
        s.clipRatioRegion,
        s.ratioMean,
        s.ratioMin,
        s.ratioMax,
      ]),
    ) as tf.Tensor1D;
    return { loss: r.loss, stats };
  }

  /** The advantages of docs/algorithms.md §8.1 for the whole rollout (so `scale: 'batch'` sees every reward). */
  private advantages(batch: RolloutMinibatch): Float64Array {
    return Float64Array.from(
      groupAdvantages(Array.from(batch.rewards), this.config.numGenerations, {
        scale: this.config.scaleRewards,
      }),
    );
  }

  private static named(values: Float32Array | Int32Array | Uint8Array): Metrics {
    const out: Metrics = {};
    STAT_NAMES.forEach((name, i) => (out[name] = values[i]!));
    out['policy/clipfrac'] = out['clip_ratio/region_mean']!;
    return out;
  }

  async evaluate(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const { beta, metrics } = this.check(batch, context, 'grpo.evaluate');
    const withAdv: RolloutMinibatch = { ...batch, rewards: this.advantages(batch) };
    const stats = tf.tidy(() => this.loss(withAdv, beta).stats);
    try {
      return { ...metrics, ...Grpo.named(await stats.data()) };
    } finally {
      stats.dispose();
    }
  }

  async update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const { beta, metrics } = this.check(batch, context, 'grpo.update');
    const G = this.config.numGenerations;
    const groups = batch.batchSize / G;
    // The buffer shuffles whole groups into minibatches with the plugin's seeded stream (kept in state()). It
    // carries each row's advantage in its `rewards` slot, so advantages follow their rows.
    const buffer = new ReplayBuffer({ capacity: groups, responsesPerPrompt: G });
    const advantages = this.advantages(batch);
    buffer.add(
      batch,
      batch.refLogprobs ? { rewards: advantages, refLogprobs: batch.refLogprobs } : { rewards: advantages },
    );
    const per =
      this.config.groupsPerMinibatch > 0 ? Math.min(this.config.groupsPerMinibatch, groups) : groups;
    const trainable = this.policy.trainableVariables();
    const varList = [...trainable.values()];
    const sums = new MetricMean();
    let gradNorm = 0;
    let steps = 0;
    let skipped = 0;
    for (let iteration = 0; iteration < this.config.numIterations; iteration++) {
      for (const mb of buffer.minibatches(per, this.rng)) {
        let stats: tf.Tensor1D | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const r = this.loss(mb, beta);
          stats = r.stats;
          return r.loss;
        }, varList);
        try {
          const loss = (await value.data())[0]!;
          // The guarded step skips a non-finite loss or gradient and an exploding update.
          const r = await adamwStep(this.optimizer, trainable, grads, {
            maxGradNorm: this.config.maxGradNorm,
            loss,
          });
          if (r.skipped) skipped += 1;
          else {
            gradNorm += r.gradNorm;
            steps += 1;
            sums.add(Grpo.named(await stats!.data()));
          }
        } finally {
          tf.dispose([value, ...Object.values(grads)]);
          stats?.dispose();
        }
      }
    }
    this.updates += 1;
    this.skipped += skipped;
    return {
      ...metrics,
      ...(steps > 0 ? sums.result() : {}),
      'train/grad_norm': steps > 0 ? gradNorm / steps : 0,
      'train/lr': this.config.lr,
      'train/optimizer_steps': steps,
      'train/skipped_steps': skipped,
    };
  }

  state(): PluginState {
    return optimizerPluginState(this.optimizer, this.rng, { updates: this.updates, skipped: this.skipped });
  }

  load(state: PluginState): void {
    const { rng, updates, skipped } = loadOptimizerPluginState('grpo', state, this.optimizer);
    this.rng = rng;
    this.updates = updates;
    this.skipped = skipped;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
