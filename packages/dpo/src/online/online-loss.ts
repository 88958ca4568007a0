/**
 * The online DPO loss on a minibatch of rollout pairs (docs/algorithms.md §1.12, §3.4): each pair's two responses were
 * sampled from the current policy and scored by the reward function; the better-scored one is "chosen".
 */
import * as tf from '@tensorflow/tfjs-core';
import { validatePairBatch, type PairBatch } from '@relign/core';
import { stopGradient } from '@relign/tensor';
import { dpoLoss, resolveDpoLossOptions, type DpoLossType } from '../loss.js';

/** How a pair's scores become a preference label (docs/algorithms.md §1.12). */
export type PairLabels = 'hard' | 'soft';

export const PAIR_LABELS: readonly PairLabels[] = ['hard', 'soft'];

/** Options of {@link onlineDpoLoss}. */
export interface OnlineDpoLossOptions {
  /** β > 0 (docs/algorithms.md §1.12 / §3.4: 0.1). */
  beta: number;
  lossType: DpoLossType;
  /** ε in [0, 0.5) (cDPO / rDPO, docs/algorithms.md §3.2); 0 for IPO. */
  labelSmoothing: number;
  /**
   * `'hard'` (default, TRL OnlineDPO): the higher score is chosen, ties → the first response (docs/algorithms.md §1.12).
   * `'soft'`: Bradley–Terry soft labels `p = σ(r_chosen − r_rejected)` (the P3O authors' pre-release code).
   */
  labels: PairLabels;
}

/**
 * Online DPO over B rollout pairs, in the form the shared pairwise update (`PairwiseOptimizer` of
 * `@relign/core`) calls: `input.logRatio` are `L_θ(y_k) = S_θ(y_k) − S_ref(y_k)` (sums, with the gradient),
 * `input.oldLogRatio` the sampling policy's, `input.reward` the processed rewards (only `Δ = r1 − r2` is used):
 *
 *     y1 chosen iff Δ >= 0 (ties → y1, docs/algorithms.md §1.12);  L_w, L_l = the chosen / rejected log-ratios
 *     hard: loss = dpoLoss(L_w, L_l)                                   (docs/algorithms.md §3.4, TRL OnlineDPO)
 *     soft: p = σ(|Δ|), loss = p·ℓ(h) + (1 − p)·ℓ(−h)                   (docs/algorithms.md §1.12, Bradley–Terry labels)
 *
 * with `h = L_w − L_l` and ℓ the configured member of the family (DPO, cDPO, rDPO, or IPO on **sums**, as
 * TRL's online trainer does, docs/algorithms.md §3.4: the pair minibatch carries no response lengths).
 *
 * Statistics: `policy/ratio_*` are the per-response sequence importance ratios `exp(S_θ − S_old)` (1 on a
 * fresh rollout), and the implicit-reward statistics of docs/algorithms.md §3.1 under `dpo/`.
 *
 * @returns the minibatch loss and named scalar statistics, all caller-owned.
 */
export function onlineDpoLoss(
  input: PairBatch,
  options: OnlineDpoLossOptions,
): { loss: tf.Scalar; stats: Record<string, tf.Scalar> } {
  const fn = 'onlineDpoLoss';
  validatePairBatch(input, fn);
  const { labels } = options;
  if (!PAIR_LABELS.includes(labels))
    throw new Error(`${fn}: \`labels\` must be 'hard' or 'soft', got ${String(labels)}.`);
  const lossOptions = resolveDpoLossOptions(
    {
      beta: options.beta,
      lossType: options.lossType,
      labelSmoothing: options.labelSmoothing,
      ipoNormalization: 'sum',
    },
    fn,
  );
  return tf.tidy(() => {
    const [l1, l2] = input.logRatio;
    const [o1, o2] = input.oldLogRatio;
    const delta = tf.sub(input.reward[0], input.reward[1]);
    // The label is data (rewards), never differentiated, so `where` routes each gradient to its response.
    const firstChosen = tf.greaterEqual(delta, 0);
    const chosen = tf.where(firstChosen, l1, l2);
    const rejected = tf.where(firstChosen, l2, l1);
    const zeros = tf.zerosLike(chosen);
    // P(chosen ≻ rejected) = σ(r_chosen − r_rejected) = σ(|Δ|) >= 1/2.
    const preference = labels === 'soft' ? (tf.sigmoid(tf.abs(delta)) as tf.Tensor1D) : undefined;
    const out = dpoLoss(
      {
        policyChosen: chosen,
        policyRejected: rejected,
        refChosen: zeros,
        refRejected: zeros,
        ...(preference ? { preference } : {}),
      },
      lossOptions,
    );
    // Sequence-level importance ratios of the 2B responses (docs/algorithms.md §1.3: the reference terms cancel).
    const ratio = tf.exp(tf.concat([tf.sub(stopGradient(l1), o1), tf.sub(stopGradient(l2), o2)]));
    return {
      loss: out.loss,
      stats: {
        'loss/policy': tf.clone(out.loss),
        'policy/ratio_mean': tf.mean(ratio) as tf.Scalar,
        'policy/ratio_min': tf.min(ratio) as tf.Scalar,
        'policy/ratio_max': tf.max(ratio) as tf.Scalar,
        'dpo/accuracy': out.accuracy,
        'dpo/margin': out.margin,
        'dpo/reward_chosen': tf.mean(out.chosenReward) as tf.Scalar,
        'dpo/reward_rejected': tf.mean(out.rejectedReward) as tf.Scalar,
        'dpo/scores_margin': tf.mean(tf.abs(delta)) as tf.Scalar,
        'dpo/tie_fraction': tf.mean(tf.cast(tf.equal(delta, 0), 'float32')) as tf.Scalar,
        'dpo/label_mean': preference ? (tf.mean(preference) as tf.Scalar) : tf.scalar(1),
      },
    };
  });
}
