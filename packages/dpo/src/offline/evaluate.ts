/**
 * Held-out evaluation of a DPO policy: the loss and the implicit-reward statistics of docs/algorithms.md §3.1 on
 * preference pairs, against cached reference sums.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import type { TokenizedPair } from '@relign/reward-model';
import { dpoLoss, type DpoLossOptions } from '../loss.js';
import type { ReferenceLogprobs } from './reference-cache.js';
import { responseLengths, sequenceLogprobSums } from './sequence-logprobs.js';

/** Means over the evaluated pairs. */
export interface DpoEvalResult {
  /** Mean DPO-family loss. */
  loss: number;
  /** Implicit-reward accuracy `mean[r̂_w > r̂_l]` (docs/algorithms.md §3.1). */
  accuracy: number;
  /** Mean `r̂_w − r̂_l`. */
  margin: number;
  /** Mean `r̂_w = β(S_θ(y_w) − S_ref(y_w))`. */
  chosenReward: number;
  /** Mean `r̂_l`. */
  rejectedReward: number;
  /** Pairs evaluated. */
  pairs: number;
}

export interface EvaluateDpoOptions {
  padId: number;
  /** Sequences per forward pass. Default 32. */
  batchSize?: number;
  /** The loss whose value is reported (defaults of `dpoLoss`). */
  loss?: DpoLossOptions;
}

/**
 * Evaluates `policy` on `pairs` (no gradient, no parameter change).
 * @param reference the pairs' reference sums (from `ReferenceLogprobCache.get` or `computeReferenceLogprobs`),
 *   `[N]` each.
 * @throws Error when `pairs` is empty or the reference sums do not have one value per pair.
 */
export async function evaluateDpo(
  policy: CausalLM,
  pairs: readonly TokenizedPair[],
  reference: Pick<ReferenceLogprobs, 'chosen' | 'rejected'>,
  options: EvaluateDpoOptions,
): Promise<DpoEvalResult> {
  const N = pairs.length;
  if (N === 0) throw new Error('evaluateDpo: pairs is empty; evaluation needs at least one pair.');
  if (reference.chosen.length !== N || reference.rejected.length !== N) {
    throw new Error(
      `evaluateDpo: reference sums have ${reference.chosen.length}/${reference.rejected.length} values for ${N} pairs; ` +
        'compute them for these pairs (ReferenceLogprobCache.get).',
    );
  }
  const { padId, batchSize = 32 } = options;
  const chosenEx = pairs.map((p) => p.chosen);
  const rejectedEx = pairs.map((p) => p.rejected);
  const policyChosen = await sequenceLogprobSums(policy, chosenEx, { padId, batchSize });
  const policyRejected = await sequenceLogprobSums(policy, rejectedEx, { padId, batchSize });
  const out = tf.tidy(() => {
    const r = dpoLoss(
      {
        policyChosen: tf.tensor1d(policyChosen),
        policyRejected: tf.tensor1d(policyRejected),
        refChosen: tf.tensor1d(reference.chosen),
        refRejected: tf.tensor1d(reference.rejected),
        chosenLengths: responseLengths(chosenEx),
        rejectedLengths: responseLengths(rejectedEx),
      },
      options.loss,
    );
    return tf.stack([r.loss, r.accuracy, r.margin, tf.mean(r.chosenReward), tf.mean(r.rejectedReward)]);
  });
  const v = (await out.data()) as Float32Array;
  out.dispose();
  return {
    loss: v[0]!,
    accuracy: v[1]!,
    margin: v[2]!,
    chosenReward: v[3]!,
    rejectedReward: v[4]!,
    pairs: N,
  };
}
