/**
 * Reading a rollout as pairs (docs/algorithms.md §1.7, §1.8b): two responses per prompt, rows `2i` and `2i + 1`
 * answering prompt i. The sequence log-ratios `L = Σ_t m_t (ℓ − ℓ_ref)` to the frozen reference (docs/algorithms.md
 * §0) and the per-pair reward differences every pairwise loss is built from.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import { computeLogprobs, type RolloutBatch, type RolloutMinibatch } from '@relign/rollout';
import { describeValue } from '@relign/tensor';

/**
 * Checks that a rollout can be read as pairs: two responses per prompt (rows `2i`, `2i + 1` answer prompt i,
 * docs/algorithms.md §1.1) and reference log-probs `[B, Tr]` present (needed for `L`, docs/algorithms.md §1.2).
 * @throws Error naming `fn`, the field and the fix.
 */
export function checkPairRollout(batch: RolloutMinibatch, fn: string): void {
  if (batch === null || typeof batch !== 'object')
    throw new Error(`${fn}: batch must be a RolloutMinibatch, got ${describeValue(batch)}.`);
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
