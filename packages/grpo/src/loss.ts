/**
 * GRPO's per-token clipped loss with the k3 KL term and its four aggregations (docs/algorithms.md §8.2; check
 * vector T16b).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkTensor, describeValue } from '@relign/tensor';

/** How per-token losses become one number (docs/algorithms.md §8.2; TRL's `loss_type`). */
export type GrpoLossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

export const GRPO_LOSS_TYPES: readonly GrpoLossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];

export interface GrpoLossInput {
  /** `[B, T]` token log-probs under the current policy at the sampling temperature; carries the gradient. */
  logprobs: tf.Tensor2D;
  /** `[B, T]` log-probs of the policy that sampled the completions (data). */
  oldLogprobs: tf.Tensor2D;
  /** `[B, T]` reference log-probs (data); needed only when `beta > 0`. */
  refLogprobs?: tf.Tensor2D;
  /** `[B]` one advantage per completion (`groupAdvantages`), the same for each of its tokens. */
  advantages: tf.Tensor1D;
  /** `[B, T]` 1 at completion tokens (the stop token included), 0 at padding; any dtype. */
  mask: tf.Tensor2D;
}

export interface GrpoLossOptions {
  /** ε_low: the ratio is clipped below at 1 − ε_low. Default 0.2 (TRL `epsilon`). */
  clipRange: number;
  /** ε_high: the ratio is clipped above at 1 + ε_high. Default `clipRange` (TRL `epsilon_high`; DAPO 0.28). */
  clipRangeHigh: number;
  /** β of the k3 KL term. Default 0 (TRL; the paper used 0.04). */
  beta: number;
  /** Aggregation. Default `'dapo'` (TRL's current default; the paper's is `'grpo'`). */
  lossType: GrpoLossType;
  /** The `dr_grpo` normaliser's length (TRL `max_completion_length`). Default T, the tensors' width. */
  maxCompletionLength: number;
}

/** Scalars for logging, named as TRL logs them; caller-owned. */
export type GrpoStats = {
  /** Masked mean of k3 (0 when β = 0 and no reference is given). TRL `kl`. */
  kl: tf.Scalar;
  /** Fraction of tokens with ρ < 1 − ε_low and A < 0. TRL `clip_ratio/low_mean`. */
  clipRatioLow: tf.Scalar;
  /** Fraction of tokens with ρ > 1 + ε_high and A > 0. TRL `clip_ratio/high_mean`. */
  clipRatioHigh: tf.Scalar;
  /** Either of the two. TRL `clip_ratio/region_mean`. */
  clipRatioRegion: tf.Scalar;
  /** Masked mean, min and max of ρ (1 on a fresh rollout). */
  ratioMean: tf.Scalar;
  ratioMin: tf.Scalar;
  ratioMax: tf.Scalar;
};

export type GrpoLossResult = {
  /** The aggregated loss; minimise it. Carries the gradient. */
  loss: tf.Scalar;
  /** `[B, T]` per-token `L_tok` (0 at padding; carries the gradient). */
  perTokenLoss: tf.Tensor2D;
  stats: GrpoStats;
};

const FN = 'grpoLoss';

function resolveOptions(options: Partial<GrpoLossOptions> | undefined, width: number): GrpoLossOptions {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new Error(`${FN}: options must be an object, got ${describeValue(options)}.`);
  }
  const o = options ?? {};
  const clipRange = o.clipRange ?? 0.2;
  const resolved: GrpoLossOptions = {
    clipRange,
    clipRangeHigh: o.clipRangeHigh ?? clipRange,
    beta: o.beta ?? 0,
    lossType: o.lossType ?? 'dapo',
    maxCompletionLength: o.maxCompletionLength ?? width,
  };
  const check = (key: keyof GrpoLossOptions, ok: boolean, what: string): void => {
    if (!ok) throw new Error(`${FN}: options.${key} must be ${what}, got ${describeValue(resolved[key])}.`);
  };
  const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  check(
    'clipRange',
    num(resolved.clipRange) && resolved.clipRange > 0 && resolved.clipRange < 1,
    'in (0, 1)',
  );
  check('clipRangeHigh', num(resolved.clipRangeHigh) && resolved.clipRangeHigh > 0, 'a number > 0');
  check('beta', num(resolved.beta) && resolved.beta >= 0, 'a finite number >= 0');
  check('lossType', GRPO_LOSS_TYPES.includes(resolved.lossType), `one of ${GRPO_LOSS_TYPES.join(', ')}`);
  check(
    'maxCompletionLength',
    Number.isSafeInteger(resolved.maxCompletionLength) && resolved.maxCompletionLength >= width,
    `an integer >= the tensors' width T = ${width} (the longest completion the sampler allows)`,
  );
  return resolved;
}

/**
 * The GRPO loss of docs/algorithms.md §8.2 over B completions of width T:
 *
 *     ρ      = exp(ℓ_θ − ℓ_old)
 *     L_tok  = −min(ρ·A_i, clip(ρ, 1 − ε_low, 1 + ε_high)·A_i) + β·k3,   k3 = e^(ℓ_ref − ℓ_θ) − (ℓ_ref − ℓ_θ) − 1
 *     grpo:    mean_i Σ_t m·L_tok / max(Σ_t m, 1)
 *     bnpo, dapo: Σ_{i,t} m·L_tok / max(Σ_{i,t} m, 1)      (DAPO: over the global batch; one process = bnpo)
 *     dr_grpo: Σ_{i,t} m·L_tok / (B · maxCompletionLength)
 *
 * The gradient reaches only `logprobs`: `−A·ρ` where the unclipped term is the min (tfjs's `minimum` sends a tie
 * to its first argument, the unclipped term, whose derivative the clip shares inside its closed interval), 0
 * where the clipped term is active, plus `β·(1 − e^(ℓ_ref − ℓ_θ))`. Call it inside `tf.variableGrads`; `tf.keep`
 * the stats you read afterwards.
 *
 * @returns `{ loss, perTokenLoss, stats }`, all caller-owned.
 * @throws Error naming the input or option that is invalid.
 */
export function grpoLoss(input: GrpoLossInput, options?: Partial<GrpoLossOptions>): GrpoLossResult {
  if (input === null || typeof input !== 'object') {
    throw new Error(`${FN}: input must be { logprobs, oldLogprobs, refLogprobs?, advantages, mask }.`);
  }
  const lp = checkTensor(input.logprobs, 'input.logprobs', FN, { rank: 2, layout: '[B, T]' }) as tf.Tensor2D;
  const [B, T] = lp.shape;
  const shape = { rank: 2, layout: '[B, T]', shape: [B, T] };
  checkTensor(input.oldLogprobs, 'input.oldLogprobs', FN, shape);
  checkTensor(input.mask, 'input.mask', FN, { ...shape, dtype: 'any' });
  checkTensor(input.advantages, 'input.advantages', FN, {
    rank: 1,
    layout: '[B] (one advantage per completion)',
    shape: [B],
  });
  const o = resolveOptions(options, T);
  if (input.refLogprobs !== undefined) checkTensor(input.refLogprobs, 'input.refLogprobs', FN, shape);
  else if (o.beta > 0) {
    throw new Error(
      `${FN}: options.beta is ${o.beta} but input.refLogprobs is missing; pass the reference log-probs or beta 0.`,
    );
  }
  return tf.tidy(() => {
    const m = tf.cast(input.mask, 'float32');
    const adv = tf.expandDims(input.advantages, 1); // [B, 1]: every token of completion i shares A_i
    const ratio = tf.exp(tf.sub(lp, input.oldLogprobs));
    const unclipped = tf.mul(ratio, adv);
    const clipped = tf.mul(tf.clipByValue(ratio, 1 - o.clipRange, 1 + o.clipRangeHigh), adv);
    let perToken = tf.neg(tf.minimum(unclipped, clipped)); // first argument wins ties: see TSDoc
    let k3: tf.Tensor = tf.zerosLike(lp);
    if (input.refLogprobs !== undefined) {
      const u = tf.sub(input.refLogprobs, lp);
      k3 = tf.sub(tf.expm1(u), u); // e^u − u − 1, with expm1 for precision near u = 0
      if (o.beta > 0) perToken = tf.add(perToken, tf.mul(k3, o.beta));
    }
    const masked = tf.mul(perToken, m) as tf.Tensor2D;
    const tokens = tf.sum(m);
    const atLeastOne = (x: tf.Tensor): tf.Tensor => tf.maximum(x, 1);
    let loss: tf.Scalar;
    if (o.lossType === 'grpo') {
      loss = tf.mean(tf.div(tf.sum(masked, 1), atLeastOne(tf.sum(m, 1))));
    } else if (o.lossType === 'dr_grpo') {
      loss = tf.div(tf.sum(masked), B * o.maxCompletionLength);
    } else {
      loss = tf.div(tf.sum(masked), atLeastOne(tokens));
    }
    // Statistics: detached values, masked means over valid tokens.
    const meanOf = (x: tf.Tensor): tf.Scalar => tf.div(tf.sum(tf.mul(x, m)), atLeastOne(tokens));
    const low = tf.logicalAnd(tf.less(ratio, 1 - o.clipRange), tf.less(adv, 0));
    const high = tf.logicalAnd(tf.greater(ratio, 1 + o.clipRangeHigh), tf.greater(adv, 0));
    const valid = tf.greater(m, 0);
    const stats: GrpoStats = {
      kl: meanOf(k3),
      clipRatioLow: meanOf(tf.cast(low, 'float32')),
      clipRatioHigh: meanOf(tf.cast(high, 'float32')),
      clipRatioRegion: meanOf(tf.cast(tf.logicalOr(low, high), 'float32')),
      ratioMean: meanOf(ratio),
      ratioMin: tf.min(tf.where(valid, ratio, tf.fill([B, T], Infinity))),
      ratioMax: tf.max(tf.where(valid, ratio, tf.fill([B, T], -Infinity))),
    };
    return { loss, perTokenLoss: masked, stats };
  });
}
