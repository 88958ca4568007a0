/**
 * Per-token rewards of LLM-PPO (docs/algorithms.md §2.4, §4.4, §4.6b; test vectors T7, T8): a token-level KL penalty to the
 * reference at every response token, plus the processed sequence score on the last real token (Convention A).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, checkOptions, checkTensor, klEstimate, type KlEstimator } from '@relign/tensor';
import { checkTokenInputs, maskBool, select } from './inputs.js';

const FN = 'tokenRewards';

export interface TokenRewardsInput {
  /** float32 `[B, T]`: log-probs of the sampled tokens under the sampling policy (`ℓ_old`, at τ). */
  logprobs: tf.Tensor2D;
  /** float32 `[B, T]`: log-probs of the same tokens under the frozen reference (`ℓ_ref`, at the same τ). */
  refLogprobs: tf.Tensor2D;
  /** float32 `[B]`: the processed score of each response (after scaling / normalisation / clipping). */
  scores: tf.Tensor1D;
  /** `[B, T]` (bool, int32 or float32): non-zero at valid response tokens, stop token included. */
  mask: tf.Tensor2D;
}

export interface TokenRewardsOptions {
  /** β ≥ 0, the KL coefficient (the trainer's, `UpdateContext.klCoef`; PPO-max ≈ 0.05, docs/algorithms.md §2.1). */
  klCoef: number;
  /** KL estimator (docs/algorithms.md §4.3): `'k1'` (default; PPO-max, TRL, OpenRLHF), `'k2'` or `'k3'`. */
  estimator?: KlEstimator;
}

export type TokenRewardsResult = {
  /** float32 `[B, T]`: `r_t = −β·k_t`, plus the score at each row's last valid token; 0 where the mask is 0. */
  rewards: tf.Tensor2D;
  /** float32 `[B, T]`: the per-token KL estimate `k_t`, 0 where the mask is 0. */
  kl: tf.Tensor2D;
};

/**
 * `r_t = −β · k(ℓ_old(t), ℓ_ref(t))` at every valid token, and `r_last += score` where `last` is the last
 * position of the row whose mask is non-zero (Convention A, docs/algorithms.md §4.4 [CHOICE]; OpenRLHF's
 * `eos_index = T − 1 − argmax(fliplr(mask))`). The last valid position is found from the mask itself, so the
 * score lands on the last real token for any padding layout (right, left, none). A row with no valid token
 * gets no reward at all.
 *
 * Log-probs at masked positions may be anything (NaN included): they are removed with a select.
 *
 * @returns new tensors owned by the caller; the inputs are not disposed. Not meant to be differentiated
 *   (rewards are data, docs/algorithms.md §6).
 * @throws Error naming the argument for a wrong type or shape, β < 0, or an unknown estimator.
 */
export function tokenRewards(input: TokenRewardsInput, options: TokenRewardsOptions): TokenRewardsResult {
  const fields = ['logprobs', 'refLogprobs', 'mask'] as const;
  const { logprobs: lp, refLogprobs: ref, mask } = checkTokenInputs(input, fields, FN);
  const shape = lp.shape as [number, number];
  const scores = checkTensor((input as TokenRewardsInput).scores, 'scores', FN, {
    rank: 1,
    layout: '[B] (one score per response)',
    shape: [shape[0]],
  });
  const o = checkOptions(options, ['klCoef', 'estimator'], FN);
  const beta = checkNumber(
    o.klCoef,
    'options.klCoef',
    FN,
    (x) => x >= 0 && Number.isFinite(x),
    '>= 0 (the KL coefficient β)',
  );
  const estimator = (o.estimator ?? 'k1') as KlEstimator;
  if (estimator !== 'k1' && estimator !== 'k2' && estimator !== 'k3') {
    throw new Error(
      `${FN}: \`options.estimator\` must be 'k1', 'k2' or 'k3', got ${JSON.stringify(estimator)}.`,
    );
  }
  const [, T] = shape;
  return tf.tidy(() => {
    const cond = maskBool(mask);
    const kl = select(cond, klEstimate(select(cond, lp), select(cond, ref), estimator)) as tf.Tensor2D;
    // Index of the last valid position of each row: T − 1 − (first valid position of the reversed row).
    const maskF = tf.cast(cond, 'float32');
    const last = tf.sub(tf.scalar(T - 1, 'int32'), tf.cast(tf.argMax(tf.reverse(maskF, 1), 1), 'int32'));
    // int32 one-hot then a cast (the wasm backend's OneHot ignores a float dtype, see logprobsFromLogits).
    const atLast = tf.mul(tf.cast(tf.oneHot(last, T), 'float32'), maskF); // all-zero rows: no score
    const rewards = tf.add(tf.mul(kl, -beta), tf.mul(atLast, tf.expandDims(scores, 1))) as tf.Tensor2D;
    return { rewards, kl };
  });
}
