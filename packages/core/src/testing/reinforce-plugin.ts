/**
 * A minimal, complete optimizer plugin: sequence-level REINFORCE with a leave-one-out group baseline and a
 * PPO-style clipped importance ratio. It is small on purpose: the worked example of `CONTRIBUTING.md`, the
 * plugin the Trainer's own tests drive, and a reference for what the conformance suite expects. It is not
 * one of the paper algorithms (use `@relign/p3o-v2`, `@relign/ppo-max`, `@relign/dpo` for those).
 *
 * Per response i of a group (docs/algorithms.md §0 notation, sums over the valid response tokens):
 *   s_i = r_i − β·(S_old,i − S_ref,i)                 (sequence KL penalty with the k1 estimator, docs/algorithms.md §1.2)
 *   A_i = s_i − mean_{j≠i} s_j                        (leave-one-out baseline; G = 1: the batch mean)
 *   ρ_i = exp(S_θ,i − S_old,i)
 *   loss = mean_i max(−A_i ρ_i, −A_i clip(ρ_i, 1−ε, 1+ε))
 * A non-finite loss or gradient skips the step (`train/skipped_steps`), so NaN never reaches the weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, createRng, type Rng } from '@relign/tensor';
import { computeLogprobs, ReplayBuffer, type RolloutMinibatch } from '@relign/rollout';
import type { CausalLM } from '@relign/lm';
import { loadOptimizerPluginState, optimizerPluginState } from '../plugin-state.js';
import { adamwStep } from '../pairs/optimizer-loop.js';
import { booleanField, configSchema, integerField, numberField, type InferConfig } from '../config.js';
import {
  definePlugin,
  type AlgorithmInstance,
  type Metrics,
  type PluginState,
  type UpdateContext,
} from '../plugin.js';

/** The config, declared once: valibot validates it and {@link ReinforceConfig} is inferred from it. */
export const reinforceConfigSchema = configSchema({
  lr: numberField({ default: 1e-3, min: 0, exclusiveMin: true, description: 'AdamW learning rate' }),
  epochs: integerField({ default: 1, min: 1, max: 100, description: 'passes over each rollout' }),
  groupsPerMinibatch: integerField({
    default: 0,
    min: 0,
    description: 'prompts (groups) per minibatch; 0 = the whole rollout in one minibatch',
  }),
  responsesPerPrompt: integerField({
    default: 2,
    min: 1,
    max: 64,
    description: 'responses sampled per prompt',
  }),
  clipRange: numberField({
    default: 0.2,
    min: 0,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    description: 'ratio clip ε (docs/algorithms.md §4.6)',
  }),
  maxGradNorm: numberField({
    default: 1,
    min: 0,
    exclusiveMin: true,
    description: 'global grad-norm clip',
  }),
  weightDecay: numberField({ default: 0, min: 0, description: 'AdamW decoupled weight decay' }),
  useReference: booleanField({
    default: true,
    description: 'subtract β·KL to the reference from rewards',
  }),
});

export type ReinforceConfig = InferConfig<typeof reinforceConfigSchema>;

/** The example plugin (registry name `reinforce`). */
export const reinforcePlugin = definePlugin<ReinforceConfig>({
  name: 'reinforce',
  description: 'Sequence-level REINFORCE with a leave-one-out baseline and a clipped ratio (example plugin)',
  configSchema: reinforceConfigSchema,
  requirements: (c) => ({
    responsesPerPrompt: c.responsesPerPrompt,
    referenceLogprobs: c.useReference,
    valueHead: false,
  }),
  create: (context, config) => new Reinforce(context.policy, config, context.seed),
});

/** Σ_t over each row's valid tokens of a host `[B, Tr]` array. */
function rowSums(values: Float32Array, batch: RolloutMinibatch): Float64Array {
  const { batchSize: B, responseWidth: Tr } = batch;
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let t = 0; t < batch.responseLengths[b]!; t++) s += values[b * Tr + t]!;
    out[b] = s;
  }
  return out;
}

class Reinforce implements AlgorithmInstance {
  private readonly optimizer: AdamW;
  private rng: Rng;
  private updates = 0;
  private skipped = 0;

  constructor(
    private readonly policy: CausalLM,
    private readonly config: ReinforceConfig,
    seed: number | string,
  ) {
    this.optimizer = new AdamW({ lr: config.lr, weightDecay: config.weightDecay });
    this.rng = createRng(seed);
  }

  /** Advantages A_i (host, detached) and S_old, for one minibatch. */
  private advantages(batch: RolloutMinibatch, klCoef: number): { adv: Float32Array; oldSums: Float32Array } {
    const B = batch.batchSize;
    const G = batch.responsesPerPrompt;
    const oldSums = rowSums(batch.logprobs, batch);
    const shaped = new Float64Array(B);
    const refSums =
      this.config.useReference && batch.refLogprobs ? rowSums(batch.refLogprobs, batch) : undefined;
    for (let b = 0; b < B; b++)
      shaped[b] = batch.rewards[b]! - (refSums ? klCoef * (oldSums[b]! - refSums[b]!) : 0);
    const adv = new Float32Array(B);
    if (G === 1) {
      const mean = shaped.reduce((a, v) => a + v, 0) / B;
      for (let b = 0; b < B; b++) adv[b] = shaped[b]! - mean;
    } else {
      for (let g = 0; g < B; g += G) {
        let sum = 0;
        for (let j = 0; j < G; j++) sum += shaped[g + j]!;
        for (let j = 0; j < G; j++) adv[g + j] = shaped[g + j]! - (sum - shaped[g + j]!) / (G - 1);
      }
    }
    return { adv, oldSums: Float32Array.from(oldSums) };
  }

  /** The loss and its statistics; differentiable w.r.t. the policy when called inside `variableGrads`. */
  private loss(batch: RolloutMinibatch, adv: tf.Tensor1D, oldSums: tf.Tensor1D) {
    const eps = this.config.clipRange;
    const sums = tf.sum(computeLogprobs(this.policy, batch), 1);
    const ratio = tf.exp(tf.sub(sums, oldSums));
    const unclipped = tf.mul(tf.neg(adv), ratio);
    const clipped = tf.mul(tf.neg(adv), tf.clipByValue(ratio, 1 - eps, 1 + eps));
    const loss = tf.mean(tf.maximum(unclipped, clipped)) as tf.Scalar;
    const clipfrac = tf.mean(tf.cast(tf.greater(clipped, unclipped), 'float32')) as tf.Scalar;
    return { loss, ratio, clipfrac };
  }

  async evaluate(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const { adv, oldSums } = this.advantages(batch, context.klCoef);
    const [loss, ratio, clipfrac] = tf.tidy(() => {
      const r = this.loss(batch, tf.tensor1d(adv), tf.tensor1d(oldSums));
      return [r.loss, r.ratio, r.clipfrac];
    });
    const values = {
      loss: (await loss.data())[0]!,
      ratio: Array.from(await ratio.data()),
      clipfrac: (await clipfrac.data())[0]!,
    };
    tf.dispose([loss, ratio, clipfrac]);
    return {
      'loss/policy': values.loss,
      'policy/ratio_mean': values.ratio.reduce((a, v) => a + v, 0) / values.ratio.length,
      'policy/ratio_min': Math.min(...values.ratio),
      'policy/ratio_max': Math.max(...values.ratio),
      'policy/clipfrac': values.clipfrac,
    };
  }

  async update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const G = batch.responsesPerPrompt;
    const groups = batch.batchSize / G;
    // Minibatches of whole groups, reshuffled every epoch with the plugin's own stream (kept in state()).
    const buffer = new ReplayBuffer({ capacity: groups, responsesPerPrompt: G });
    buffer.add(
      batch,
      batch.refLogprobs
        ? { rewards: batch.rewards, refLogprobs: batch.refLogprobs }
        : { rewards: batch.rewards },
    );
    const per = this.config.groupsPerMinibatch > 0 ? this.config.groupsPerMinibatch : groups;
    const trainable = this.policy.trainableVariables();
    const varList = [...trainable.values()];
    let losses = 0;
    let clipfracs = 0;
    let gradNorm = 0;
    let steps = 0;
    let skipped = 0;
    for (let epoch = 0; epoch < this.config.epochs; epoch++) {
      for (const mb of buffer.minibatches(per, this.rng)) {
        const { adv, oldSums } = this.advantages(mb, context.klCoef);
        const advT = tf.tensor1d(adv);
        const oldT = tf.tensor1d(oldSums);
        let clipfracT: tf.Scalar | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const r = this.loss(mb, advT, oldT);
          clipfracT = tf.keep(r.clipfrac);
          return r.loss;
        }, varList);
        try {
          const loss = (await value.data())[0]!;
          // The guarded step skips a non-finite loss or gradient and an exploding update.
          const r = await adamwStep(this.optimizer, trainable, grads, {
            maxGradNorm: this.config.maxGradNorm,
            loss,
          });
          const skip = r.skipped;
          if (!skip) gradNorm = r.gradNorm;
          if (skip) skipped += 1;
          else {
            losses += loss;
            clipfracs += (await clipfracT!.data())[0]!;
            steps += 1;
          }
        } finally {
          tf.dispose([value, advT, oldT, ...Object.values(grads)]);
          clipfracT?.dispose();
        }
      }
    }
    this.updates += 1;
    this.skipped += skipped;
    return {
      'loss/policy': steps > 0 ? losses / steps : 0,
      'policy/clipfrac': steps > 0 ? clipfracs / steps : 0,
      'train/grad_norm': gradNorm,
      'train/lr': this.config.lr,
      'train/skipped_steps': skipped,
      'train/optimizer_steps': steps,
    };
  }

  state(): PluginState {
    return optimizerPluginState(this.optimizer, this.rng, { updates: this.updates, skipped: this.skipped });
  }

  load(state: PluginState): void {
    const { rng, updates, skipped } = loadOptimizerPluginState('reinforce', state, this.optimizer);
    this.rng = rng;
    this.updates = updates;
    this.skipped = skipped;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
