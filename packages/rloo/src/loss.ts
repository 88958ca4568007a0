/**
 * The RLOO policy loss on whole completions (docs/algorithms.md §9): each completion is one action with
 * sequence log-prob `S_θ = Σ_t m·ℓ_θ` and a detached advantage A.
 */
import * as tf from '@tensorflow/tfjs-core';

/** `'clipped'`: the PPO-clipped form on the sequence ratio (TRL); `'reinforce'`: plain REINFORCE. */
export type RlooLossType = 'clipped' | 'reinforce';

export interface RlooLossInput {
  /** `[B]` sequence log-probs `S_θ` under the current policy; carries the gradient. */
  logprobSums: tf.Tensor1D;
  /** `[B]` sequence log-probs `S_old` of the policy that sampled the completions (constant). */
  oldLogprobSums: tf.Tensor1D;
  /** `[B]` advantages A (constant, e.g. from {@link rlooAdvantages} with the KL penalty). */
  advantages: tf.Tensor1D;
}

export interface RlooLossOptions {
  /** Default `'clipped'`. */
  lossType?: RlooLossType;
  /** ε of `clip(ρ, 1 − ε, 1 + ε)`; default 0.2. */
  clipRange?: number;
}

export interface RlooLossResult {
  /** The scalar to minimise. */
  loss: tf.Scalar;
  /** `[B]` sequence ratios `ρ = exp(S_θ − S_old)`. */
  ratio: tf.Tensor1D;
  /** Fraction of completions whose clipped term is the larger (active) one; in 'reinforce' mode, would be. */
  clipfrac: tf.Scalar;
  /** TRL's `approxkl`: `0.5·mean((S_θ − S_old)²)`. */
  approxkl: tf.Scalar;
}

/**
 * `'reinforce'`: `L = −mean_i A_i·S_θ,i`. `'clipped'`: `L = mean_i max(−A_i·ρ_i, −A_i·clip(ρ_i, 1 − ε, 1 + ε))`;
 * at ρ = 1 (a fresh rollout) its gradient equals REINFORCE's, and it is exactly 0 for a completion whose
 * clipped term is active. Every returned tensor is the caller's; call inside `tf.variableGrads` to train.
 */
export function rlooLoss(input: RlooLossInput, options: RlooLossOptions = {}): RlooLossResult {
  const { lossType = 'clipped', clipRange = 0.2 } = options;
  if (lossType !== 'clipped' && lossType !== 'reinforce') {
    throw new Error(`rlooLoss: options.lossType must be 'clipped' or 'reinforce', got ${String(lossType)}.`);
  }
  if (!(Number.isFinite(clipRange) && clipRange > 0 && clipRange < 1)) {
    throw new Error(`rlooLoss: options.clipRange must be in (0, 1), got ${String(clipRange)}.`);
  }
  const { logprobSums: s, oldLogprobSums: old, advantages: a } = input;
  for (const [name, t] of [
    ['logprobSums', s],
    ['oldLogprobSums', old],
    ['advantages', a],
  ] as const) {
    if (!(t instanceof tf.Tensor) || t.rank !== 1 || t.shape[0] !== s.shape[0]) {
      throw new Error(`rlooLoss: input.${name} must be a Tensor1D [B] like input.logprobSums.`);
    }
  }
  return tf.tidy(() => {
    const diff = tf.sub(s, old);
    const ratio = tf.exp(diff) as tf.Tensor1D;
    const negA = tf.neg(a);
    const unclipped = tf.mul(negA, ratio);
    const clipped = tf.mul(negA, tf.clipByValue(ratio, 1 - clipRange, 1 + clipRange));
    const loss = (
      lossType === 'clipped' ? tf.mean(tf.maximum(unclipped, clipped)) : tf.mean(tf.mul(negA, s))
    ) as tf.Scalar;
    const clipfrac = tf.mean(tf.cast(tf.greater(clipped, unclipped), 'float32')) as tf.Scalar;
    const approxkl = tf.mul(0.5, tf.mean(tf.square(diff))) as tf.Scalar;
    return { loss, ratio, clipfrac, approxkl };
  });
}
