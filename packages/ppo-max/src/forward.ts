/**
 * The policy's training pass when the entropy term is on: one forward that gives both the response log-probs
 * and the per-token entropy of `softmax(z / τ)` (docs/algorithms.md §2.7 entropy term, §4.6). Without the entropy term the
 * plugin uses `computeLogprobs` of @relign/rollout; this pass builds exactly the same model input (prompt
 * left-padded, `response[:, :Tr−1]`, the padding masked), so both give the same log-probs.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import { responseMaskArray, type RolloutBatch } from '@relign/rollout';
import { entropyFromLogits, logprobsFromLogits } from '@relign/tensor';

/**
 * Log-probs (at the batch's sampling τ, full vocabulary) and entropies of the policy over the batch's
 * responses, both float32 `[B, Tr]` and 0 at padding; differentiable w.r.t. the policy. Caller-owned.
 */
export function logprobsAndEntropy(
  model: CausalLM,
  batch: RolloutBatch,
): { logprobs: tf.Tensor2D; entropy: tf.Tensor2D } {
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr } = batch;
  const V = model.config.vocab_size;
  const tau = batch.options.temperature;
  if (!(tau > 0)) {
    throw new Error(
      `ppo-max: the entropy term needs a sampling temperature > 0 (the batch was sampled at ${tau}).`,
    );
  }
  const W = Tp + Tr - 1;
  if (W > model.config.n_positions) {
    throw new Error(
      `ppo-max: promptWidth ${Tp} + responseWidth ${Tr} − 1 = ${W} exceeds the policy's n_positions=${model.config.n_positions}.`,
    );
  }
  const ids = new Int32Array(B * W);
  const mask = new Float32Array(B * W);
  let padded = false;
  for (let b = 0; b < B; b++) {
    ids.set(batch.promptTokens.subarray(b * Tp, (b + 1) * Tp), b * W);
    ids.set(batch.responseTokens.subarray(b * Tr, b * Tr + Tr - 1), b * W + Tp);
    const lp = batch.promptLengths[b]!;
    const lr = Math.min(batch.responseLengths[b]!, Tr - 1);
    mask.fill(1, b * W + Tp - lp, b * W + Tp + lr);
    if (lp !== Tp || lr !== Tr - 1) padded = true;
  }
  return tf.tidy(() => {
    const idsT = tf.tensor2d(ids, [B, W], 'int32');
    const { logits } = model.forward(
      idsT,
      padded ? { attentionMask: tf.tensor2d(mask, [B, W], 'float32') } : {},
    );
    const z = tf.slice(logits, [0, Tp - 1, 0], [B, Tr, V]) as tf.Tensor3D;
    const m = tf.tensor2d(responseMaskArray(batch), [B, Tr]);
    const tokens = tf.tensor2d(batch.responseTokens, [B, Tr], 'int32');
    return {
      logprobs: tf.mul(logprobsFromLogits(z, tokens, tau), m) as tf.Tensor2D,
      entropy: tf.mul(entropyFromLogits(z, tau), m) as tf.Tensor2D,
    };
  });
}
