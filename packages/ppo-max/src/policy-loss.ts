/**
 * The clipped PPO policy loss with token-mean aggregation (docs/algorithms.md §2.7, §4.6; test vectors T3, T10).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkClipOptions, checkTokenInputs, maskBool, select, tokenMean } from './inputs.js';

const FN = 'ppoPolicyLoss';

export interface PolicyLossInput {
  /** float32 `[B, T]`: `ℓ_θ`, log-probs under the current policy. Carries the gradient. */
  logprobs: tf.Tensor;
  /** float32 `[B, T]`: `ℓ_old`, log-probs at sampling time (data; no gradient is taken through it). */
  oldLogprobs: tf.Tensor;
  /** float32 `[B, T]`: `Â`, (whitened) advantages (data). */
  advantages: tf.Tensor;
  /** `[B, T]` (bool, int32 or float32): non-zero at the tokens that count. */
  mask: tf.Tensor;
}

export interface PolicyLossOptions {
  /**
   * ε > 0: the ratio is clipped to `[1 − ε, 1 + ε]` (0.2, docs/algorithms.md §2.7). `Infinity` turns clipping off (the
   * plain importance-sampled loss `−Â·ρ`, MOSS without `use_policy_loss_clip`).
   */
  clipRange: number;
  /**
   * The divisor `n` of the token mean. Default: the number of valid tokens of this input (`Σ mask`).
   * Pass the token count of the whole minibatch when the minibatch is split into micro-batches: the sum of
   * the micro-batch losses (and gradients) then equals the minibatch loss exactly.
   */
  tokenCount?: number;
}

export type PolicyLossResult = {
  /** `Σ_t m_t · max(−Â_t ρ_t, −Â_t clip(ρ_t, 1−ε, 1+ε)) / n`, a float32 scalar; minimise it. Carries the gradient. */
  loss: tf.Scalar;
  /** `Σ_t m_t [clipped term > unclipped term] / n` (MOSS `pg_clip`, TRL `clipfrac`). */
  clipFrac: tf.Scalar;
  /** `Σ_t m_t ((ρ_t − 1) − log ρ_t) / n`: the k3 estimate of KL(π_old ‖ π_θ) (MOSS `approx_kl`, docs/algorithms.md §2.10). */
  approxKl: tf.Scalar;
};

/**
 * The PPO clipped surrogate (docs/algorithms.md §2.7, §4.6), per token
 *
 *     ρ_t = exp(ℓ_θ(t) − ℓ_old(t)),   loss_t = max(−Â_t ρ_t, −Â_t clip(ρ_t, 1 − ε, 1 + ε))
 *
 * aggregated as a token mean over the batch: `Σ_t m_t loss_t / n` (docs/algorithms.md §4.6 `agg`; T3: −0.136414 on the
 * OpenRLHF tensors). The gradient w.r.t. `logprobs` is `−Â_t ρ_t / n` where the unclipped term is the max and 0
 * where the clipped term is (T10: a token whose ratio has moved past `1 ± ε` in the direction its advantage
 * favours gets no gradient); at a tie (ratio inside the range) the unclipped branch carries it.
 *
 * Masked positions are removed with a select (never multiplied), so NaN or ±Inf there reaches neither the loss
 * nor the gradient. `clipFrac` and `approxKl` are statistics (no gradient needed); compute them inside the same
 * `tf.variableGrads` closure and `tf.keep` them if you want them from a training pass.
 *
 * @returns three new float32 scalars owned by the caller (dispose them, or let a `tf.tidy` do it); the inputs
 *   are not disposed.
 * @throws Error naming the argument for a wrong type or shape, ε ≤ 0 or a `tokenCount` ≤ 0.
 */
export function ppoPolicyLoss(input: PolicyLossInput, options: PolicyLossOptions): PolicyLossResult {
  const fields = ['logprobs', 'oldLogprobs', 'advantages', 'mask'] as const;
  const { logprobs: lp, oldLogprobs: old, advantages: adv, mask } = checkTokenInputs(input, fields, FN);
  const { eps, tokenCount } = checkClipOptions(options, FN);
  return tf.tidy(() => {
    const cond = maskBool(mask);
    const mean = tokenMean(cond, tokenCount);
    // Masked positions: log-ratio 0 (ρ = 1) and advantage 0, selected before anything is computed with them.
    const logRatio = select(cond, tf.sub(lp, old));
    const ratio = tf.exp(logRatio);
    const negAdv = tf.neg(select(cond, adv));
    const unclipped = tf.mul(negAdv, ratio);
    let perToken = unclipped;
    let clipped: tf.Tensor | undefined;
    if (Number.isFinite(eps)) {
      clipped = tf.mul(negAdv, tf.clipByValue(ratio, 1 - eps, 1 + eps));
      // tf.maximum sends the gradient to its first argument on ties: the unclipped branch.
      perToken = tf.maximum(unclipped, clipped);
    }
    const loss = mean(perToken);
    const clipFrac = clipped ? mean(tf.cast(tf.greater(clipped, unclipped), 'float32')) : tf.scalar(0);
    const approxKl = mean(tf.sub(tf.sub(ratio, 1), logRatio));
    return { loss, clipFrac, approxKl };
  });
}
