/**
 * Code shared by pairwise optimizers: P3O-V1, P3O-V2 (docs/algorithms.md §1) and, later, online DPO (docs/algorithms.md §1.12). They all
 * sample two responses per prompt, reduce each response to a sequence log-ratio to the reference
 * `L = Σ_t m_t (ℓ_θ(t) − ℓ_ref(t))` (docs/algorithms.md §0), and update on the pair's difference.
 *
 * Three layers, each usable alone:
 * 1. Pair-loss helpers (tensors, docs/algorithms.md §1.2–§1.5, §1.8b): {@link PairBatch} checks, {@link stopGradient},
 *    the detached KL-regularised reward difference {@link pairQ}, the pair statistics {@link pairStats}, and the
 *    P3O loss options ({@link P3OOptions}, {@link resolveP3OOptions}).
 * 2. Rollout → pairs (docs/algorithms.md §1.7, §1.8b): {@link checkPairRollout}, {@link oldLogRatios},
 *    {@link pairRewardDifferences}, {@link sequenceLogRatios}, {@link splitPairs}, {@link pairTensors}.
 * 3. The update machinery (docs/algorithms.md §1.8): {@link PairwiseOptimizer} runs epochs of seeded shuffles of pairs into
 *    minibatches, one AdamW step per minibatch with global-norm clipping and a non-finite skip
 *    ({@link adamwStep}), averages the metrics ({@link MetricMean}), and checkpoints its state. An algorithm
 *    supplies only its loss ({@link PairwiseLoss}) and config.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import { computeLogprobs, ReplayBuffer, type RolloutBatch, type RolloutMinibatch } from '@relign/rollout';
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
import { configSchema, enumField, integerField, numberField, type InferConfig } from './config.js';
import type { AlgorithmInstance, Metrics, PluginContext, PluginState, UpdateContext } from './plugin.js';
import { newRows } from './new-rows.js';

// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────
// 1. Pair-loss helpers
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * One minibatch of B prompt pairs (docs/algorithms.md §1.8b). Index 0 is response y1, index 1 is y2; all six tensors are
 * float32 with shape `[B]`.
 */
export interface PairBatch {
  /** `L_θ(y_k) = S_θ(y_k) − S_ref(y_k)` under the current policy: carries the gradient. */
  logRatio: readonly [tf.Tensor1D, tf.Tensor1D];
  /** `L_old(y_k)` stored at rollout (data; no gradient is taken through it). */
  oldLogRatio: readonly [tf.Tensor1D, tf.Tensor1D];
  /** Processed rewards `r_k` (docs/algorithms.md §1.7); only `r1 − r2` matters (docs/algorithms.md §1.10). */
  reward: readonly [tf.Tensor1D, tf.Tensor1D];
}

/** P3O loss options (docs/algorithms.md §1.9 defaults: β = 0.05, ε = 0.2, c = 10). */
export interface P3OOptions {
  /** β ≥ 0: weight of the sequence-level KL penalty inside `q` (docs/algorithms.md §1.2). */
  klCoef: number;
  /** ε > 0: the PPO-style update clip (docs/algorithms.md §1.4 on the pair log-ratio, §1.5 on each ratio). */
  clipRange: number;
  /** c > 1: the detached importance weights are clamped to `[1/c, c]` (docs/algorithms.md §1.4, §1.5). */
  ratioClip: number;
}

/** Defaults of the P3O authors' code (docs/algorithms.md §1.9). */
export const P3O_DEFAULT_OPTIONS: Readonly<P3OOptions> = Object.freeze({
  klCoef: 0.05,
  clipRange: 0.2,
  ratioClip: 10,
});

/**
 * Statistics logged with every P3O loss (stable metric names, docs/algorithms.md §1.4 "Logged"). All are float32 scalars
 * with no gradient path into the loss.
 */
export type P3OStats = {
  /** The minibatch loss (a clone of `loss`, so a logger may dispose it independently). */
  'loss/policy': tf.Scalar;
  /** Fraction of clipped terms: V2 `mean[a_clip > a]` over pairs; V1 over the 2B per-response terms. */
  'policy/clipfrac': tf.Scalar;
  /** Mean importance-sampling ratio, before the `[1/c, c]` clamp (V2: ρ1ρ2 per pair; V1: ρ1 and ρ2). */
  'policy/ratio_mean': tf.Scalar;
  /** Smallest importance-sampling ratio, before the clamp. */
  'policy/ratio_min': tf.Scalar;
  /** Largest importance-sampling ratio, before the clamp. */
  'policy/ratio_max': tf.Scalar;
  /** Mean of the detached `q` (docs/algorithms.md §1.2). */
  'p3o/q_mean': tf.Scalar;
  /** Population (biased) standard deviation of `q` over the minibatch; 0 for B = 1. */
  'p3o/q_std': tf.Scalar;
  /** Mean of `|r1 − r2|` = reward of the higher- minus the lower-reward response (no KL term). */
  'p3o/reward_diff_mean': tf.Scalar;
  /** Mean current log-ratio `L_θ` of the higher-reward response of each pair (y1 on ties). */
  'p3o/logratio_chosen': tf.Scalar;
  /** Mean current log-ratio `L_θ` of the lower-reward response of each pair. */
  'p3o/logratio_rejected': tf.Scalar;
  /** `logratio_chosen − logratio_rejected`. */
  'p3o/logratio_gap': tf.Scalar;
};

/** What a P3O loss returns. Every tensor is owned by the caller (dispose it, or let a tidy do it). */
export interface P3OLossResult {
  /** Minibatch loss, mean over pairs (docs/algorithms.md §1.8b); minimise it. Carries the gradient. */
  loss: tf.Scalar;
  /** `loss_i` per pair, shape `[B]` (carries the gradient; `loss` is its mean). */
  perPairLoss: tf.Tensor1D;
  /** Logged statistics, see {@link P3OStats}. */
  stats: P3OStats;
}

const P3O_OPTION_KEYS = ['klCoef', 'clipRange', 'ratioClip'] as const;

/**
 * Checks the six input tensors of a pair loss (docs/algorithms.md §1.8b shapes) and returns B. Errors name the offending
 * field and `fn` (the calling loss).
 */
export function validatePairBatch(input: unknown, fn: string): number {
  if (input === null || typeof input !== 'object') {
    throw new TypeError(
      `${fn}: \`input\` must be an object { logRatio, oldLogRatio, reward }, got ${describe(input)}.`,
    );
  }
  const rec = input as Record<string, unknown>;
  let batch: number | undefined;
  for (const field of ['logRatio', 'oldLogRatio', 'reward'] as const) {
    const pair = rec[field];
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(
        `${fn}: \`input.${field}\` must be a pair [y1, y2] of float32 Tensor1D of shape [B], got ${describe(pair)}.`,
      );
    }
    for (let k = 0; k < 2; k++) {
      const t: unknown = pair[k];
      const name = `input.${field}[${k}]`;
      if (!(t instanceof tf.Tensor)) {
        throw new TypeError(`${fn}: \`${name}\` must be a tf.Tensor of shape [B], got ${describe(t)}.`);
      }
      if (t.isDisposed) throw new Error(`${fn}: \`${name}\` has been disposed; pass a live tensor.`);
      if (t.dtype !== 'float32') {
        throw new Error(
          `${fn}: \`${name}\` must be float32, got ${t.dtype}; cast it with tf.cast(x, 'float32').`,
        );
      }
      if (t.rank !== 1) {
        throw new Error(
          `${fn}: \`${name}\` must have rank 1 [B] (one value per pair), got shape [${t.shape.join(', ')}].`,
        );
      }
      const b = t.shape[0] as number;
      if (batch === undefined) {
        if (b < 1) throw new Error(`${fn}: \`${name}\` is empty; a minibatch needs at least one pair.`);
        batch = b;
      } else if (b !== batch) {
        throw new Error(
          `${fn}: \`${name}\` must have shape [B] = [${batch}] like \`input.logRatio[0]\`, got [${b}].`,
        );
      }
    }
  }
  return batch as number;
}

/** Fills in the docs/algorithms.md §1.9 defaults and checks ranges; unknown keys (typos such as `kl_coef`) are errors. */
export function resolveP3OOptions(options: Partial<P3OOptions> | undefined, fn: string): P3OOptions {
  if (options === undefined) return { ...P3O_DEFAULT_OPTIONS };
  if (options === null || typeof options !== 'object') {
    throw new TypeError(
      `${fn}: \`options\` must be an object { klCoef, clipRange, ratioClip }, got ${describe(options)}.`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!(P3O_OPTION_KEYS as readonly string[]).includes(key)) {
      throw new Error(
        `${fn}: unknown option \`options.${key}\`; the options are ${P3O_OPTION_KEYS.join(', ')}.`,
      );
    }
  }
  const out = { ...P3O_DEFAULT_OPTIONS };
  for (const key of P3O_OPTION_KEYS) {
    const v = options[key];
    if (v !== undefined) out[key] = v;
  }
  const check = (key: keyof P3OOptions, ok: (v: number) => boolean, want: string): void => {
    const v: unknown = out[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
      throw new Error(`${fn}: \`options.${key}\` must be a finite number ${want}, got ${describe(v)}.`);
    }
  };
  check('klCoef', (v) => v >= 0, '>= 0 (the KL coefficient β)');
  check('clipRange', (v) => v > 0, '> 0 (the update clip ε)');
  check('ratioClip', (v) => v > 1, '> 1 (importance weights are clamped to [1/c, c])');
  return out;
}

// Value x, gradient zero: `sg(·)` of docs/algorithms.md §0. Applied to the *inputs* of the detached quantities (q, w), so an
// overflowing exp() on the detached path can never send 0·∞ = NaN into the gradient.
const stopGradientOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  return { value: tf.clone(x), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
});

/** `sg(x)`: same values as `x`, zero gradient (docs/algorithms.md §0). Returns a new tensor. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return stopGradientOp(x) as T;
}

/**
 * `q = (r1 − r2) − β (L1 − L2)` from detached log-ratios (docs/algorithms.md §1.2, P3O-1), all `[B]`. The reward difference
 * is taken first, so a per-pair shift δ added to both rewards cancels before anything else is rounded
 * (docs/algorithms.md §1.10).
 */
export function pairQ(
  r1: tf.Tensor1D,
  r2: tf.Tensor1D,
  sgL1: tf.Tensor1D,
  sgL2: tf.Tensor1D,
  klCoef: number,
): tf.Tensor1D {
  return tf.sub(tf.sub(r1, r2), tf.mul(tf.sub(sgL1, sgL2), klCoef));
}

/** The statistics that depend only on q, rewards and detached log-ratios (docs/algorithms.md §1.4 "Logged"); inputs `[B]`. */
export function pairStats(
  q: tf.Tensor1D,
  r1: tf.Tensor1D,
  r2: tf.Tensor1D,
  sgL1: tf.Tensor1D,
  sgL2: tf.Tensor1D,
): Pick<
  P3OStats,
  | 'p3o/q_mean'
  | 'p3o/q_std'
  | 'p3o/reward_diff_mean'
  | 'p3o/logratio_chosen'
  | 'p3o/logratio_rejected'
  | 'p3o/logratio_gap'
> {
  const { mean, variance } = tf.moments(q);
  // y1 is "chosen" when r1 >= r2 (ties go to y1); the condition is data, never differentiated.
  const firstChosen = tf.greaterEqual(r1, r2);
  const chosen = tf.mean(tf.where(firstChosen, sgL1, sgL2)) as tf.Scalar;
  const rejected = tf.mean(tf.where(firstChosen, sgL2, sgL1)) as tf.Scalar;
  return {
    'p3o/q_mean': mean as tf.Scalar,
    'p3o/q_std': tf.sqrt(variance) as tf.Scalar,
    'p3o/reward_diff_mean': tf.mean(tf.abs(tf.sub(r1, r2))) as tf.Scalar,
    'p3o/logratio_chosen': chosen,
    'p3o/logratio_rejected': rejected,
    'p3o/logratio_gap': tf.sub(chosen, rejected),
  };
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────
// 2. Rollout → pairs
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Checks that a rollout can be read as pairs: two responses per prompt (rows `2i`, `2i + 1` answer prompt i,
 * docs/algorithms.md §1.1) and reference log-probs `[B, Tr]` present (needed for `L`, docs/algorithms.md §1.2).
 * @throws Error naming `fn`, the field and the fix.
 */
export function checkPairRollout(batch: RolloutMinibatch, fn: string): void {
  if (batch === null || typeof batch !== 'object')
    throw new Error(`${fn}: batch must be a RolloutMinibatch, got ${describe(batch)}.`);
  if (batch.responsesPerPrompt !== 2) {
    throw new Error(
      `${fn}: batch.responsesPerPrompt is ${String(batch.responsesPerPrompt)}; pairwise algorithms need exactly 2 responses ` +
        'per prompt (the plugin declares responsesPerPrompt: 2 in its requirements; sample the rollout with it).',
    );
  }
  if (!Number.isInteger(batch.batchSize) || batch.batchSize < 2 || batch.batchSize % 2 !== 0) {
    throw new Error(
      `${fn}: batch.batchSize must be a positive even number of rows (pairs × 2), got ${String(batch.batchSize)}.`,
    );
  }
  const r = batch.rewards as unknown;
  if (!(r instanceof Float64Array || r instanceof Float32Array) || r.length !== batch.batchSize) {
    throw new Error(
      `${fn}: batch.rewards must be a Float64Array [B] = [${batch.batchSize}] (one score per response).`,
    );
  }
  if (!(batch.refLogprobs instanceof Float32Array)) {
    throw new Error(
      `${fn}: batch.refLogprobs is missing; pairwise algorithms need the frozen reference's log-probs (requirements ` +
        'referenceLogprobs: true) to form L = Σ(ℓθ − ℓref) (docs/algorithms.md §1.2).',
    );
  }
  if (batch.refLogprobs.length !== batch.batchSize * batch.responseWidth) {
    throw new Error(
      `${fn}: batch.refLogprobs has ${batch.refLogprobs.length} entries; its shape [B, Tr] = ` +
        `[${batch.batchSize}, ${batch.responseWidth}] needs ${batch.batchSize * batch.responseWidth}.`,
    );
  }
}

/**
 * `L_old(y) = Σ_t m_t (ℓ_old(t) − ℓ_ref(t))` per row (docs/algorithms.md §1.8b), from the batch's sampling log-probs and its
 * reference log-probs, summed in float64 over each row's valid tokens.
 * @returns `[B]` host values, per sequence.
 */
export function oldLogRatios(batch: RolloutBatch & { refLogprobs?: Float32Array }): Float64Array {
  const ref = batch.refLogprobs;
  if (!ref)
    throw new Error(
      'oldLogRatios: batch.refLogprobs is missing (the reference log-probs are needed for L_old).',
    );
  const { batchSize: B, responseWidth: Tr } = batch;
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let t = 0; t < batch.responseLengths[b]!; t++) s += batch.logprobs[b * Tr + t]! - ref[b * Tr + t]!;
    out[b] = s;
  }
  return out;
}

/**
 * Per pair, the reward difference `r1 − r2` (float64) of rows `2i` and `2i + 1`, after the optional clip of
 * each raw score to `[−rewardClip, rewardClip]` (docs/algorithms.md §1.7 step 3; `rewardClip = 0` = off).
 *
 * Only this difference enters P3O (docs/algorithms.md §1.10), so a per-prompt shift δ(x) of the scores cancels exactly here
 * when the clip is off (or wide enough that no shifted score reaches it).
 * @returns `[B / 2]` host values.
 */
export function pairRewardDifferences(rewards: ArrayLike<number>, rewardClip = 0): Float64Array {
  if (rewards.length % 2 !== 0) {
    throw new Error(
      `pairRewardDifferences: ${rewards.length} rewards is not a whole number of pairs (2 per prompt).`,
    );
  }
  if (!(rewardClip >= 0) || !Number.isFinite(rewardClip)) {
    throw new Error(
      `pairRewardDifferences: rewardClip must be a finite number >= 0 (0 = off), got ${rewardClip}.`,
    );
  }
  const clip = (r: number): number => (rewardClip > 0 ? Math.min(Math.max(r, -rewardClip), rewardClip) : r);
  const out = new Float64Array(rewards.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = clip(rewards[2 * i]!) - clip(rewards[2 * i + 1]!);
  return out;
}

/**
 * `L_θ(y) = Σ_t m_t (ℓ_θ(t) − ℓ_ref(t))` per row (docs/algorithms.md §0, §1.8b), differentiable w.r.t. the policy: call it
 * inside `tf.variableGrads`. Log-probs use the batch's sampling temperature with top-k/top-p off (docs/algorithms.md §4.2;
 * `computeLogprobs` of @relign/rollout, 0 at padding, as are the stored reference log-probs).
 * @returns float32 `[B]`, per sequence; the caller disposes it (or a tidy does).
 */
export function sequenceLogRatios(
  policy: CausalLM,
  batch: RolloutBatch & { refLogprobs?: Float32Array },
): tf.Tensor1D {
  const ref = batch.refLogprobs;
  if (!ref)
    throw new Error(
      'sequenceLogRatios: batch.refLogprobs is missing (the reference log-probs are needed for L).',
    );
  return tf.tidy(() => {
    const lp = computeLogprobs(policy, batch);
    // Both arrays are 0 at padding, so the plain row sum is the masked sum over valid response tokens.
    return tf.sum(
      tf.sub(lp, tf.tensor2d(ref, [batch.batchSize, batch.responseWidth], 'float32')),
      1,
    ) as tf.Tensor1D;
  });
}

/**
 * Splits per-row values `[2P]` (rows `2i`, `2i + 1` = the pair of prompt i) into `[y1 values, y2 values]`, each
 * `[P]`. Differentiable (reshape + unstack).
 */
export function splitPairs(x: tf.Tensor1D): [tf.Tensor1D, tf.Tensor1D] {
  const n = x.shape[0];
  if (n % 2 !== 0)
    throw new Error(`splitPairs: ${n} rows is not a whole number of pairs (2 rows per prompt).`);
  return tf.tidy(() => tf.unstack(tf.reshape(x, [n / 2, 2]), 1) as [tf.Tensor1D, tf.Tensor1D]);
}

/** Host per-row values `[2P]` → float32 pair tensors `[y1, y2]`, each `[P]` (caller-owned). */
export function pairTensors(values: ArrayLike<number>): [tf.Tensor1D, tf.Tensor1D] {
  if (values.length % 2 !== 0)
    throw new Error(`pairTensors: ${values.length} rows is not a whole number of pairs.`);
  const P = values.length / 2;
  const a = new Float32Array(P);
  const b = new Float32Array(P);
  for (let i = 0; i < P; i++) {
    a[i] = values[2 * i]!;
    b[i] = values[2 * i + 1]!;
  }
  return [tf.tensor1d(a, 'float32'), tf.tensor1d(b, 'float32')];
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────
// 3. Update machinery
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * One guarded AdamW step (`AdamW.guardedStep`) on `grads` (keyed by tfjs variable name, as
 * `tf.variableGrads` returns them) for the parameters `trainable` (keyed by parameter name), with
 * global-norm clipping. A non-finite `loss`, gradient or result, or an update beyond the guard's bounds
 * (`maxUpdateNorm`, `maxWeightAbs` of `@relign/tensor`), skips the step: no parameter or moment changes
 * (plugin contract, `train/skipped_steps`); `message` says why. Gradients are not disposed.
 */
export async function adamwStep(
  optimizer: AdamW,
  trainable: Map<string, tf.Variable>,
  grads: tf.NamedTensorMap,
  { lr, maxGradNorm, loss }: { lr: number; maxGradNorm: number; loss: number },
): Promise<{ gradNorm: number; skipped: boolean; message?: string }> {
  const byName: Record<string, tf.Tensor> = {};
  for (const [name, v] of trainable) {
    const g = grads[v.name];
    if (g !== undefined) byName[name] = g;
  }
  const r = await optimizer.guardedStep(byName, trainable, { lr, maxGradNorm, loss });
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

/**
 * Settings of {@link PairwiseOptimizer} (the shared part of a pairwise plugin's config), shared by every
 * pairwise plugin (P3O-V1, P3O-V2, online DPO) so that their optimisation settings, and so a comparison
 * between them, are the same by default: the authors' P3O code (docs/algorithms.md §1.9; `thwu1/trlx`
 * `examples/hh/p3o_hh.py`, the "6B" column). Each plugin spreads `PAIRWISE_OPTIMIZER_SCHEMA.entries` into its
 * own schema and adds its loss's fields.
 *
 * `rewardScaling: 'pairwise-std'` divides each pair's `r1 − r2` by the running std of the pair differences
 * seen so far, taken in both orders ±(r1 − r2) so the scale does not depend on which response is y1 (updated
 * with each rollout before use, docs/algorithms.md §2.3 merge). Both settings keep P3O's invariance to reward translation;
 * scaling by the running std of raw scores (the authors' pipeline) would not (docs/algorithms.md §1.7 caveat), so it is not
 * offered.
 */
export const PAIRWISE_OPTIMIZER_SCHEMA = configSchema({
  lr: numberField({
    default: 8e-6,
    min: 0,
    exclusiveMin: true,
    description: 'AdamW learning rate, constant (docs/algorithms.md §1.9: 8e-6; raise it for tiny models)',
  }),
  epochs: integerField({
    default: 4,
    min: 1,
    max: 100,
    description: 'passes over each rollout, a new shuffle each (docs/algorithms.md §1.9 p3o_epochs: 4)',
  }),
  pairsPerMinibatch: integerField({
    default: 4,
    min: 1,
    description: 'prompt pairs per minibatch = per optimizer step (docs/algorithms.md §1.9 batch_size: 4)',
  }),
  maxGradNorm: numberField({
    default: 1,
    min: 0,
    exclusiveMin: true,
    description: 'global gradient-norm clip (docs/algorithms.md §1.9: 1.0, DeepSpeed config)',
  }),
  weightDecay: numberField({
    default: 1e-6,
    min: 0,
    description: 'AdamW decoupled weight decay on matrices and embeddings (docs/algorithms.md §1.9: 1e-6)',
  }),
  adamBeta1: numberField({
    default: 0.9,
    min: 0,
    max: 1,
    exclusiveMax: true,
    description: 'AdamW β1 (docs/algorithms.md §1.9: 0.9)',
  }),
  adamBeta2: numberField({
    default: 0.95,
    min: 0,
    max: 1,
    exclusiveMax: true,
    description: 'AdamW β2 (docs/algorithms.md §1.9: 0.95)',
  }),
  adamEps: numberField({
    default: 1e-8,
    min: 0,
    exclusiveMin: true,
    description: 'AdamW ε (docs/algorithms.md §1.9: 1e-8)',
  }),
  rewardScaling: enumField({
    default: 'none',
    values: ['none', 'pairwise-std'],
    description:
      "'none', or divide r1 − r2 by its running std ('pairwise-std'); both keep invariance to reward translation " +
      '(docs/algorithms.md §1.7 caveat: the authors scale by the running std of raw scores, which does not)',
  }),
  rewardClip: numberField({
    default: 0,
    min: 0,
    description:
      'clip each raw score to [−c, c] before differencing; 0 = off (the authors use 10, docs/algorithms.md §1.7; a clip that ' +
      'shifted scores reach breaks invariance to reward translation)',
  }),
});

/** Settings of {@link PairwiseOptimizer}, as declared by {@link PAIRWISE_OPTIMIZER_SCHEMA}. */
export type PairwiseOptimizerConfig = InferConfig<typeof PAIRWISE_OPTIMIZER_SCHEMA>;

/** Reward processing of a pairwise algorithm (docs/algorithms.md §1.7 and its invariance caveat). */
export type PairRewardScaling = PairwiseOptimizerConfig['rewardScaling'];

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

  private checkContext(context: UpdateContext, fn: string): number {
    const beta = context?.klCoef;
    if (typeof beta !== 'number' || !Number.isFinite(beta) || beta < 0) {
      throw new Error(`${fn}: context.klCoef (β) must be a finite number >= 0, got ${String(beta)}.`);
    }
    return beta;
  }

  async update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const fn = `${this.options.name}.update`;
    checkPairRollout(batch, fn);
    const beta = this.checkContext(context, fn);
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
    const beta = this.checkContext(context, fn);
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

function describe(value: unknown): string {
  if (value instanceof tf.Tensor) return `a ${value.dtype} tensor of shape [${value.shape.join(', ')}]`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return typeof value;
}
