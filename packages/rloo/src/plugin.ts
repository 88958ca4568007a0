/**
 * The RLOO optimizer plugin: REINFORCE Leave-One-Out (Ahmadian et al. 2024, "Back to Basics", arXiv 2402.14740;
 * the baseline from Kool et al. 2019), docs/algorithms.md §9. k completions per prompt, one KL-penalised
 * sequence reward each, the leave-one-out baseline, and REINFORCE on the whole completion, in TRL's clipped
 * form on the sequence ratio over several epochs. No value function.
 *
 * Written against the public API of `@relign/core` only, as a third-party plugin would be.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  loadOptimizerPluginState,
  optimizerPluginState,
  adamwStep,
  booleanField,
  checkKlCoef,
  configSchema,
  definePlugin,
  enumField,
  integerField,
  MetricMean,
  numberField,
  sequenceSums,
  type AlgorithmInstance,
  type InferConfig,
  type Metrics,
  type PluginState,
  type UpdateContext,
} from '@relign/core';
import type { CausalLM } from '@relign/lm';
import { computeLogprobs, ReplayBuffer, type RolloutMinibatch } from '@relign/rollout';
import { AdamW, createRng, type Rng } from '@relign/tensor';
import { rlooAdvantages, whitenAdvantages } from './advantages.js';
import { rlooLoss, type RlooLossType } from './loss.js';

/** The config: TRL's `RLOOConfig` defaults (with Hugging Face `TrainingArguments` for the optimizer). */
export const rlooConfigSchema = configSchema({
  lr: numberField({
    default: 3e-6,
    min: 0,
    exclusiveMin: true,
    description: "AdamW learning rate (TRL's RLOO examples: 3e-6)",
  }),
  rlooK: integerField({
    default: 2,
    min: 2,
    max: 64,
    description: 'k: completions per prompt (TRL rloo_k 2; the paper uses 2 or 4)',
  }),
  epochs: integerField({
    default: 4,
    min: 1,
    max: 100,
    description: 'passes over each rollout (TRL num_ppo_epochs)',
  }),
  promptsPerMinibatch: integerField({
    default: 0,
    min: 0,
    description: 'prompts (groups of k) per optimizer step; 0 = the whole rollout (TRL num_mini_batches 1)',
  }),
  lossType: enumField({
    default: 'clipped',
    values: ['clipped', 'reinforce'] as const satisfies readonly RlooLossType[],
    description:
      "'clipped': PPO-style clip of the sequence ratio (TRL); 'reinforce': −A·S_θ (docs/algorithms.md §9)",
  }),
  clipRange: numberField({
    default: 0.2,
    min: 0,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    description: 'ε of clip(ρ, 1 − ε, 1 + ε) (TRL cliprange)',
  }),
  normalizeAdvantage: booleanField({
    default: false,
    description: 'whiten the advantages over the rollout (TRL normalize_advantage)',
  }),
  maxGradNorm: numberField({
    default: 1,
    min: 0,
    exclusiveMin: true,
    description: 'global gradient-norm clip (TrainingArguments max_grad_norm)',
  }),
  weightDecay: numberField({ default: 0, min: 0, description: 'AdamW decoupled weight decay' }),
  adamBeta1: numberField({ default: 0.9, min: 0, max: 1, exclusiveMax: true, description: 'AdamW β1' }),
  adamBeta2: numberField({ default: 0.999, min: 0, max: 1, exclusiveMax: true, description: 'AdamW β2' }),
  adamEps: numberField({ default: 1e-8, min: 0, exclusiveMin: true, description: 'AdamW ε' }),
});

/** RLOO settings, as declared by {@link rlooConfigSchema}. β is not here: it is the Trainer's `klCoef`. */
export type RlooConfig = InferConfig<typeof rlooConfigSchema>;

/** TRL's `kl_coef` (docs/algorithms.md §9), the Trainer's default when its `kl` option is not given. */
const RLOO_KL_COEF = 0.05;

/** The RLOO plugin (registry name `rloo`). Rollouts: k completions per prompt with reference log-probs. */
export const rlooPlugin = definePlugin<RlooConfig>({
  name: 'rloo',
  description: 'RLOO: REINFORCE with a leave-one-out baseline (Ahmadian et al. 2024, arXiv 2402.14740)',
  configSchema: rlooConfigSchema,
  requirements: (c) => ({
    responsesPerPrompt: c.rlooK,
    referenceLogprobs: true,
    valueHead: false,
    klCoef: RLOO_KL_COEF,
  }),
  create: (context, config) => new Rloo(context.policy, config, context.seed),
});

class Rloo implements AlgorithmInstance {
  private readonly optimizer: AdamW;
  private rng: Rng;
  private updates = 0;
  private skipped = 0;

  constructor(
    private readonly policy: CausalLM,
    private readonly config: RlooConfig,
    seed: number | string,
  ) {
    this.optimizer = new AdamW({
      lr: config.lr,
      beta1: config.adamBeta1,
      beta2: config.adamBeta2,
      eps: config.adamEps,
      weightDecay: config.weightDecay,
    });
    this.rng = createRng(seed);
  }

  /**
   * Per completion, in float64: `A = LOO(r) − β·LOO(kl)` with `kl = Σ_t (ℓ_old − ℓ_ref)` (k1, at sampling
   * time). The baseline is linear, so this is the leave-one-out advantage of the penalised reward
   * `R = r − β·kl` of docs/algorithms.md §9; taking it of r alone first keeps a per-prompt shift of r exact.
   */
  private advantages(batch: RolloutMinibatch, context: UpdateContext, fn: string): number[] {
    const beta = checkKlCoef(context, fn);
    const k = batch.responsesPerPrompt;
    if (!Number.isInteger(k) || k < 2) {
      throw new Error(
        `${fn}: batch.responsesPerPrompt is ${String(k)}; RLOO needs k >= 2 completions per prompt ` +
          `(requirements().responsesPerPrompt is the config's rlooK).`,
      );
    }
    if (!batch.refLogprobs) {
      throw new Error(
        `${fn}: batch.refLogprobs is missing; the KL penalty needs the reference log-probs ` +
          `(requirements().referenceLogprobs is true: give the Trainer a reference or let it copy the policy).`,
      );
    }
    const old = sequenceSums(batch.logprobs, batch);
    const ref = sequenceSums(batch.refLogprobs, batch);
    const kl = Array.from(old, (s, b) => s - ref[b]!);
    const fromScores = rlooAdvantages(batch.rewards, k);
    const fromKl = rlooAdvantages(kl, k);
    const adv = fromScores.map((a, b) => a - beta * fromKl[b]!);
    return this.config.normalizeAdvantage ? whitenAdvantages(adv) : adv;
  }

  /** The loss on `batch` whose `rewards` slot holds the advantages; differentiable inside `variableGrads`. */
  private loss(batch: RolloutMinibatch) {
    return tf.tidy(() => {
      const logprobSums = tf.sum(computeLogprobs(this.policy, batch), 1) as tf.Tensor1D;
      const r = rlooLoss(
        {
          logprobSums,
          oldLogprobSums: tf.tensor1d(Float32Array.from(sequenceSums(batch.logprobs, batch))),
          advantages: tf.tensor1d(Float32Array.from(batch.rewards)),
        },
        { lossType: this.config.lossType, clipRange: this.config.clipRange },
      );
      // [clipfrac, approxkl, mean ρ, var ρ, min ρ, max ρ]: read back once per step.
      const { mean, variance } = tf.moments(r.ratio);
      const stats = tf.stack([r.clipfrac, r.approxkl, mean, variance, tf.min(r.ratio), tf.max(r.ratio)]);
      return { loss: r.loss, stats };
    });
  }

  private static metrics(loss: number, s: ArrayLike<number>): Metrics {
    return {
      'loss/policy': loss,
      'loss/policy_avg': loss,
      'policy/clipfrac': s[0]!,
      'policy/clipfrac_avg': s[0]!,
      'policy/approxkl_avg': s[1]!,
      'val/ratio': s[2]!,
      'val/ratio_var': s[3]!,
      'policy/ratio_min': s[4]!,
      'policy/ratio_max': s[5]!,
    };
  }

  async evaluate(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const adv = this.advantages(batch, context, 'rloo.evaluate');
    const { loss, stats } = this.loss({ ...batch, rewards: Float64Array.from(adv) });
    try {
      const m = Rloo.metrics((await loss.data())[0]!, await stats.data());
      return { ...m, 'policy/ratio_mean': m['val/ratio']! };
    } finally {
      tf.dispose([loss, stats]);
    }
  }

  async update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const adv = this.advantages(batch, context, 'rloo.update');
    const k = batch.responsesPerPrompt;
    const groups = batch.batchSize / k;
    // The advantages ride in the buffer's float64 rewards slot: minibatches of whole groups, reshuffled every
    // epoch with the plugin's own stream (kept in state()).
    const buffer = new ReplayBuffer({ capacity: groups, responsesPerPrompt: k });
    buffer.add(batch, { rewards: adv });
    const per =
      this.config.promptsPerMinibatch > 0 ? Math.min(this.config.promptsPerMinibatch, groups) : groups;
    const trainable = this.policy.trainableVariables();
    const varList = [...trainable.values()];
    const mean = new MetricMean();
    let gradNorm = 0;
    let steps = 0;
    let skipped = 0;
    for (let epoch = 0; epoch < this.config.epochs; epoch++) {
      for (const mb of buffer.minibatches(per, this.rng)) {
        let stats: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const r = this.loss(mb);
          stats = tf.keep(r.stats);
          return r.loss;
        }, varList);
        try {
          const loss = (await value.data())[0]!;
          // Skips a non-finite loss or gradient and an exploding update (train/skipped_steps).
          const r = await adamwStep(this.optimizer, trainable, grads, {
            maxGradNorm: this.config.maxGradNorm,
            loss,
          });
          if (r.skipped) skipped += 1;
          else {
            gradNorm += r.gradNorm;
            steps += 1;
            mean.add(Rloo.metrics(loss, await stats!.data()));
          }
        } finally {
          tf.dispose([value, ...Object.values(grads)]);
          stats?.dispose();
        }
      }
    }
    this.updates += 1;
    this.skipped += skipped;
    let scores = 0;
    for (const r of batch.rewards) scores += r;
    return {
      ...mean.result(),
      'objective/scores': scores / batch.batchSize,
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
    const { rng, updates, skipped } = loadOptimizerPluginState('rloo', state, this.optimizer);
    this.rng = rng;
    this.updates = updates;
    this.skipped = skipped;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
