/**
 * The update phase shared by pairwise plugins (P3O-V1, P3O-V2, online DPO; docs/algorithms.md §1.8):
 * {@link PairwiseOptimizer} runs epochs of seeded shuffles of pairs into minibatches, one guarded AdamW step per
 * minibatch with global-norm clipping and a non-finite skip ({@link adamwStep}), averages the metrics
 * ({@link MetricMean}), and checkpoints its state. An algorithm supplies only its loss ({@link PairwiseLoss}) and
 * config.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import { ReplayBuffer, type RolloutMinibatch } from '@relign/rollout';
import {
  AdamW,
  createRng,
  rngFromState,
  RunningMoments,
  RUNNING_MOMENTS_EPS,
  type Rng,
  type RngState,
  type RunningMomentsState,
} from '@relign/tensor';
import type { AlgorithmInstance, Metrics, PluginContext, PluginState, UpdateContext } from '../plugin.js';
import { newRows } from '../new-rows.js';
import { checkKlCoef } from '../update-context.js';
import { pairTensors, splitPairs, type PairBatch } from './batch.js';
import type { PairwiseOptimizerConfig } from './config.js';
import { checkPairRollout, oldLogRatios, pairRewardDifferences, sequenceLogRatios } from './rollout.js';

/**
 * One guarded AdamW step (`AdamW.guardedStep`) on `grads` (keyed by tfjs variable name, as
 * `tf.variableGrads` returns them) for the parameters `trainable` (keyed by parameter name), with
 * global-norm clipping, at `lr` (default: the optimizer's own). A non-finite `loss`, gradient or result, or an update beyond the guard's bounds
 * (`maxUpdateNorm`, `maxWeightAbs` of `@relign/tensor`), skips the step: no parameter or moment changes
 * (plugin contract, `train/skipped_steps`); `message` says why. Gradients are not disposed.
 */
export async function adamwStep(
  optimizer: AdamW,
  trainable: Map<string, tf.Variable>,
  grads: tf.NamedTensorMap,
  { lr, maxGradNorm, loss }: { lr?: number; maxGradNorm: number; loss: number },
): Promise<{ gradNorm: number; skipped: boolean; message?: string }> {
  const byName: Record<string, tf.Tensor> = {};
  for (const [name, v] of trainable) {
    const g = grads[v.name];
    if (g !== undefined) byName[name] = g;
  }
  const r = await optimizer.guardedStep(byName, trainable, {
    ...(lr === undefined ? {} : { lr }),
    maxGradNorm,
    loss,
  });
  return r.skipped
    ? { gradNorm: r.gradNorm, skipped: true, message: r.message! }
    : { gradNorm: r.gradNorm, skipped: false };
}

/**
 * Averages per-minibatch metrics over an update phase: keys ending in `_max` keep the maximum, `_min` the
 * minimum, every other key the mean over the minibatches added.
 */
export class MetricMean {
  private readonly sums = new Map<string, number>();
  private readonly counts = new Map<string, number>();

  add(metrics: Metrics): void {
    for (const [k, v] of Object.entries(metrics)) {
      const prev = this.sums.get(k);
      const n = this.counts.get(k) ?? 0;
      if (k.endsWith('_max')) this.sums.set(k, prev === undefined ? v : Math.max(prev, v));
      else if (k.endsWith('_min')) this.sums.set(k, prev === undefined ? v : Math.min(prev, v));
      else this.sums.set(k, (prev ?? 0) + v);
      this.counts.set(k, n + 1);
    }
  }

  result(): Metrics {
    const out: Metrics = {};
    for (const [k, s] of this.sums)
      out[k] = k.endsWith('_max') || k.endsWith('_min') ? s : s / this.counts.get(k)!;
    return out;
  }
}

/**
 * A pairwise loss over a minibatch of pairs: `input` as {@link PairBatch} (the `reward` tensors are the
 * processed rewards; only `r1 − r2` is meaningful), `klCoef` the trainer's β. Returns the scalar loss to
 * minimise and named scalar statistics (metric names), all caller-owned. Called inside `tf.variableGrads`.
 */
export type PairwiseLoss = (
  input: PairBatch,
  klCoef: number,
) => { loss: tf.Scalar; stats: Record<string, tf.Scalar> };

export interface PairwiseOptimizerOptions {
  /** Plugin name, for error messages. */
  name: string;
  /** Prefix of the optimizer's own metrics, e.g. `p3o` → `p3o/reward_scale`. */
  metricPrefix: string;
  context: PluginContext;
  config: PairwiseOptimizerConfig;
  loss: PairwiseLoss;
}

interface PairwiseJsonState {
  optimizerStep: number;
  rng: RngState;
  rewardMoments: RunningMomentsState;
  updates: number;
  skippedSteps: number;
}

/**
 * The update phase shared by pairwise plugins (docs/algorithms.md §1.8), as an {@link AlgorithmInstance}:
 *
 *     rewards → per-pair r1 − r2 (clip, optional running-std scaling, docs/algorithms.md §1.7)
 *     for epoch in 1..epochs:                         (a new seeded shuffle of the pairs each epoch)
 *       for each minibatch of pairsPerMinibatch pairs:
 *         L_θ = Σ_t m(ℓθ − ℓref) (grad), L_old = Σ_t m(ℓold − ℓref)     (docs/algorithms.md §1.8b)
 *         loss = algorithm's loss(L_θ, L_old, r; β)  → AdamW step, grad-norm clip, skip if non-finite
 *
 * β comes from the trainer (`UpdateContext.klCoef`). Randomness: one stream seeded by `context.seed`,
 * checkpointed with the AdamW moments and the reward statistics by {@link state}.
 */
export class PairwiseOptimizer implements AlgorithmInstance {
  private readonly policy: CausalLM;
  private readonly optimizer: AdamW;
  private rng: Rng;
  private moments = new RunningMoments();
  private updates = 0;
  private skippedSteps = 0;

  constructor(private readonly options: PairwiseOptimizerOptions) {
    const { context, config } = options;
    this.policy = context.policy;
    this.optimizer = new AdamW({
      lr: config.lr,
      beta1: config.adamBeta1,
      beta2: config.adamBeta2,
      eps: config.adamEps,
      weightDecay: config.weightDecay,
    });
    this.rng = createRng(context.seed);
  }

  /**
   * The divisor of the pair reward differences: 1, or (`'pairwise-std'`) the running std of the differences in
   * both orders (±Δ: mean 0 by symmetry, so the scale does not depend on which response is y1), merged with
   * `diffs`, the pairs new in this iteration, before use (docs/algorithms.md §2.3; none for evaluation).
   */
  private rewardScale(diffs: Float64Array): number {
    if (this.options.config.rewardScaling !== 'pairwise-std') return 1;
    if (diffs.length > 0) {
      const both = new Float64Array(diffs.length * 2);
      both.set(diffs);
      for (let i = 0; i < diffs.length; i++) both[diffs.length + i] = -diffs[i]!;
      this.moments.update(both);
    }
    return this.moments.std + RUNNING_MOMENTS_EPS;
  }

  /**
   * Data tensors of the loss for a batch whose `rewards` rows hold `[Δ_i, 0]` per pair: `L_old` pairs and the
   * reward pairs divided by `scale` (caller-owned).
   */
  private dataTensors(
    mb: RolloutMinibatch,
    scale: number,
  ): { old: [tf.Tensor1D, tf.Tensor1D]; reward: [tf.Tensor1D, tf.Tensor1D] } {
    const old = pairTensors(oldLogRatios(mb));
    // float64 until the tensors are made: the difference and its scaling are rounded once.
    const rows = scale === 1 ? mb.rewards : Float64Array.from(mb.rewards, (r) => r / scale);
    return { old, reward: pairTensors(rows) };
  }

  async update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const fn = `${this.options.name}.update`;
    checkPairRollout(batch, fn);
    const beta = checkKlCoef(context, fn);
    const { config } = this.options;
    const pairs = batch.batchSize / 2;
    // The buffer holds the rollout by pair (it never splits a prompt's two responses) with the pair's (clipped)
    // r1 − r2 as y1's reward and 0 as y2's, so each minibatch carries its pairs' differences. Adding checks the
    // batch before the running statistics are touched.
    const buffer = new ReplayBuffer({ capacity: pairs, responsesPerPrompt: 2 });
    const diffs = pairRewardDifferences(batch.rewards, config.rewardClip);
    buffer.add(batch, { rewards: pairRows(diffs), refLogprobs: batch.refLogprobs! });
    // Only pairs collected in this iteration enter the running statistics: pairs the replay buffer hands again
    // were counted when they were new.
    const fresh = new Set(newRows(batch, context));
    const scale = this.rewardScale(diffs.filter((_, i) => fresh.has(2 * i)));

    const trainable = this.policy.trainableVariables();
    const varList = [...trainable.values()];
    const mean = new MetricMean();
    let steps = 0;
    let skipped = 0;
    for (let epoch = 0; epoch < config.epochs; epoch++) {
      // docs/algorithms.md §1.8: a new shuffle of the pairs every epoch, from the plugin's checkpointed stream.
      for (const mb of buffer.minibatches(config.pairsPerMinibatch, this.rng)) {
        const { old, reward } = this.dataTensors(mb, scale);
        let stats: Record<string, tf.Scalar> = {};
        let result: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
        try {
          result = tf.variableGrads(() => {
            const [l1, l2] = splitPairs(sequenceLogRatios(this.policy, mb));
            const out = this.options.loss({ logRatio: [l1, l2], oldLogRatio: old, reward }, beta);
            stats = Object.fromEntries(Object.entries(out.stats).map(([k, v]) => [k, tf.keep(v)]));
            return out.loss;
          }, varList);
          const loss = (await result.value.data())[0]!;
          const step = await adamwStep(this.optimizer, trainable, result.grads, {
            lr: config.lr,
            maxGradNorm: config.maxGradNorm,
            loss,
          });
          if (step.skipped) {
            skipped++;
          } else {
            steps++;
            const values = await Promise.all(Object.values(stats).map(async (s) => (await s.data())[0]!));
            const m: Metrics = Object.fromEntries(Object.keys(stats).map((k, i) => [k, values[i]!]));
            m['train/grad_norm'] = step.gradNorm;
            mean.add(m);
          }
        } finally {
          tf.dispose([...old, ...reward, ...Object.values(stats)]);
          if (result) tf.dispose([result.value, ...Object.values(result.grads)]);
        }
      }
    }
    this.updates += 1;
    this.skippedSteps += skipped;
    return {
      ...mean.result(),
      'train/lr': config.lr,
      'train/optimizer_steps': steps,
      'train/skipped_steps': skipped,
      [`${this.options.metricPrefix}/reward_scale`]: scale,
    };
  }

  async evaluate(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const fn = `${this.options.name}.evaluate`;
    checkPairRollout(batch, fn);
    const beta = checkKlCoef(context, fn);
    // No state changes: the running reward statistics are read, not updated.
    const diffs = pairRewardDifferences(batch.rewards, this.options.config.rewardClip);
    const scale = this.rewardScale(new Float64Array(0));
    const stats = tf.tidy(() => {
      const { old, reward } = this.dataTensors({ ...batch, rewards: pairRows(diffs) }, scale);
      const [l1, l2] = splitPairs(sequenceLogRatios(this.policy, batch));
      return this.options.loss({ logRatio: [l1, l2], oldLogRatio: old, reward }, beta).stats;
    });
    try {
      const keys = Object.keys(stats);
      const values = await Promise.all(keys.map(async (k) => (await stats[k]!.data())[0]!));
      const out: Metrics = Object.fromEntries(keys.map((k, i) => [k, values[i]!]));
      out[`${this.options.metricPrefix}/reward_scale`] = scale;
      return out;
    } finally {
      tf.dispose(Object.values(stats));
    }
  }

  state(): PluginState {
    const { step, tensors } = this.optimizer.state();
    const out = new Map<string, tf.Tensor>();
    for (const [k, t] of tensors) out.set(`optimizer.${k}`, t);
    const json: PairwiseJsonState = {
      optimizerStep: step,
      rng: this.rng.state(),
      rewardMoments: this.moments.toJSON(),
      updates: this.updates,
      skippedSteps: this.skippedSteps,
    };
    return { json: json as unknown as Record<string, unknown>, tensors: out };
  }

  load(state: PluginState): void {
    const fn = `${this.options.name}.load`;
    if (
      state === null ||
      typeof state !== 'object' ||
      !(state.tensors instanceof Map) ||
      typeof state.json !== 'object'
    ) {
      throw new Error(`${fn}: expected a state {json, tensors: Map} from state().`);
    }
    const j = state.json as Partial<PairwiseJsonState>;
    for (const key of ['optimizerStep', 'updates', 'skippedSteps'] as const) {
      if (!Number.isInteger(j[key]) || (j[key] as number) < 0) {
        throw new Error(`${fn}: state.json.${key} must be an integer >= 0, got ${String(j[key])}.`);
      }
    }
    if (j.rng === undefined) throw new Error(`${fn}: state.json.rng (the shuffle stream) is missing.`);
    if (j.rewardMoments === undefined) throw new Error(`${fn}: state.json.rewardMoments is missing.`);
    const tensors = new Map<string, tf.Tensor>();
    for (const [k, t] of state.tensors) {
      if (!k.startsWith('optimizer.'))
        throw new Error(`${fn}: unexpected state tensor '${k}' (expected 'optimizer.*').`);
      tensors.set(k.slice('optimizer.'.length), t);
    }
    // Parse everything before changing anything, so a bad state leaves the instance as it was.
    const rng = rngFromState(j.rng);
    const moments = RunningMoments.fromJSON(j.rewardMoments);
    this.optimizer.load({ step: j.optimizerStep!, tensors });
    this.rng = rng;
    this.moments = moments;
    this.updates = j.updates!;
    this.skippedSteps = j.skippedSteps!;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/** Per-pair values `[P]` → per-row `[2P]` with the value on y1's row and 0 on y2's (so `r1 − r2` = value). */
function pairRows(perPair: ArrayLike<number>): Float64Array {
  const out = new Float64Array(perPair.length * 2);
  for (let i = 0; i < perPair.length; i++) out[2 * i] = perPair[i]!;
  return out;
}
