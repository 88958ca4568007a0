/**
 * P3O-V2 loss: pairwise PPO with *joint* clipping (docs/algorithms.md §1.4, tensor form §1.8b; check vector T12).
 */
import * as tf from '@tensorflow/tfjs-core';
import { validatePairBatch, type PairBatch } from '@relign/core';
import { pairQ, pairStats, resolveP3OOptions, type P3OLossResult, type P3OOptions } from '@relign/p3o';
import { stopGradient } from '@relign/tensor';

const FN = 'p3oV2Loss';

/**
 * P3O-V2 (joint clipping) loss over a minibatch of B pairs, exactly the authors' code path of docs/algorithms.md §1.4:
 *
 *     q      = sg[(r1 − r2) − β (L1 − L2)]                       (docs/algorithms.md §1.2, current θ, detached)
 *     w      = sg[clip(exp((L1 − L1old) + (L2 − L2old)), 1/c, c)] (joint IS weight ρ1ρ2, clamped)
 *     d      = L1 − L2,  dOld = L1old − L2old
 *     loss_i = max(−q·w·d/2, −q·w·clip(d, dOld − ε, dOld + ε)/2)
 *     loss   = mean_i loss_i
 *
 * Gradient: `∂loss_i/∂L1 = −q·w/2 = −∂loss_i/∂L2` while the unclipped branch is active, exactly 0 once `d`
 * has moved more than ε past `dOld` in the direction q favours. At θ = θ_old (w = 1, no clip active) it is
 * the pairwise policy gradient `−q·∇(L1 − L2)/2` (docs/algorithms.md §1.3, §1.8b).
 *
 * Ties: when `a == a_clip` (clip inactive, or `d` exactly on a bound) tfjs's `maximum` sends the gradient
 * to its first argument, the unclipped `a` — the same value the clip would give there, since the clip's
 * derivative is 1 on the closed interval (docs/algorithms.md §0). T12's pair 2 is such a tie.
 *
 * Call it inside the function given to `tf.variableGrads` / `optimizer.minimize`; the detached quantities
 * are made with a stop-gradient, so no caller-side care is needed. If that function is tidied (it is in
 * `tf.variableGrads`), `tf.keep` the stats you want to read afterwards, or read them inside.
 *
 * @param input `logRatio` (`[B]` each, carrying gradient), `oldLogRatio`, `reward` (`[B]` each, data).
 * @param options `{ klCoef, clipRange, ratioClip }`, each optional (defaults β 0.05, ε 0.2, c 10, docs/algorithms.md §1.9).
 * @returns `{ loss: Scalar, perPairLoss: [B], stats }`, all caller-owned.
 */
export function p3oV2Loss(input: PairBatch, options?: Partial<P3OOptions>): P3OLossResult {
  validatePairBatch(input, FN);
  const { klCoef, clipRange, ratioClip } = resolveP3OOptions(options, FN);
  return tf.tidy(() => {
    const [l1, l2] = input.logRatio;
    const [o1, o2] = input.oldLogRatio;
    const [r1, r2] = input.reward;
    const s1 = stopGradient(l1);
    const s2 = stopGradient(l2);

    const q = pairQ(r1, r2, s1, s2, klCoef);
    // ρ1ρ2 = exp(Σ_k (L_k − L_k,old)); the reference terms cancel (docs/algorithms.md §1.3).
    const ratio = tf.exp(tf.add(tf.sub(s1, o1), tf.sub(s2, o2)));
    const w = tf.clipByValue(ratio, 1 / ratioClip, ratioClip);

    const d = tf.sub(l1, l2);
    const dOld = tf.sub(o1, o2);
    // Element-wise bounds, so minimum/maximum instead of clipByValue (scalar bounds only); both send the
    // gradient to `d` at ties, so the derivative is 1 on the closed interval and exactly 0 outside.
    const dClip = tf.minimum(tf.maximum(d, tf.sub(dOld, clipRange)), tf.add(dOld, clipRange));
    const coef = tf.mul(tf.mul(q, w), -0.5); // −q·w/2, detached
    const a = tf.mul(coef, d);
    const aClip = tf.mul(coef, dClip);
    const perPairLoss = tf.maximum(a, aClip) as tf.Tensor1D; // first argument wins ties: see TSDoc
    const loss = tf.mean(perPairLoss) as tf.Scalar;

    return {
      loss,
      perPairLoss,
      stats: {
        'loss/policy': tf.clone(loss),
        'policy/clipfrac': tf.mean(tf.cast(tf.greater(aClip, a), 'float32')) as tf.Scalar,
        'policy/ratio_mean': tf.mean(ratio) as tf.Scalar,
        'policy/ratio_min': tf.min(ratio) as tf.Scalar,
        'policy/ratio_max': tf.max(ratio) as tf.Scalar,
        ...pairStats(q, r1, r2, s1, s2),
      },
    };
  });
}
