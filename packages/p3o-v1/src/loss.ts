/**
 * P3O-V1 loss: pairwise PPO with *separate* clipping (docs/algorithms.md §1.5, tensor form §1.8b; check vector T12).
 */
import * as tf from '@tensorflow/tfjs-core';
import { validatePairBatch, type PairBatch } from '@relign/core';
import { pairQ, pairStats, resolveP3OOptions, type P3OLossResult, type P3OOptions } from '@relign/p3o';
import { stopGradient } from '@relign/tensor';

const FN = 'p3oV1Loss';

/**
 * P3O-V1 (separate clipping) loss over a minibatch of B pairs, exactly the authors' code path of
 * docs/algorithms.md §1.5:
 *
 *     q      = sg[(r1 − r2) − β (L1 − L2)]                 (docs/algorithms.md §1.2, current θ, detached)
 *     ρk     = exp(Lk − Lk,old)                             (carries gradient)
 *     wk     = sg[clip(ρk, 1/c, c)]
 *     a = −q·w2·ρ1,  a_c = −q·w2·clip(ρ1, 1 − ε, 1 + ε)
 *     b = +q·w1·ρ2,  b_c = +q·w1·clip(ρ2, 1 − ε, 1 + ε)
 *     loss_i = (max(a, a_c) + max(b, b_c)) / 2,   loss = mean_i loss_i
 *
 * Each response is a PPO action with advantage ±q, its own ratio clipped, weighted by the other response's
 * detached, clamped ratio. Unclipped gradient `∂loss_i/∂L1 = −q·w2·ρ1/2`, `∂loss_i/∂L2 = +q·w1·ρ2/2`
 * (= the off-policy pairwise gradient of docs/algorithms.md §1.3 while no clamp is active); exactly 0 for a term whose
 * clipped branch is the max. At θ = θ_old it is `−q·∇(L1 − L2)/2`.
 *
 * Ties `a == a_c` (ratio inside, or exactly on, [1 − ε, 1 + ε]) send the gradient to the unclipped first
 * argument of tfjs's `maximum`, equal to the clipped branch's gradient there (clip derivative 1 on the
 * closed interval, docs/algorithms.md §0).
 *
 * Call it inside the function given to `tf.variableGrads` / `optimizer.minimize`; the detached quantities
 * are made with a stop-gradient. If that function is tidied (it is in `tf.variableGrads`), `tf.keep` the
 * stats you want to read afterwards, or read them inside. In float32, ρk overflows for `Lk − Lk,old > 88`
 * (a diverged update); no extra clamp is applied, as in the authors' code.
 *
 * @param input `logRatio` (`[B]` each, carrying gradient), `oldLogRatio`, `reward` (`[B]` each, data).
 * @param options `{ klCoef, clipRange, ratioClip }`, each optional (defaults β 0.05, ε 0.2, c 10, docs/algorithms.md §1.9).
 * @returns `{ loss: Scalar, perPairLoss: [B], stats }`, all caller-owned. `policy/clipfrac` and the ratio
 *   statistics are over the 2B per-response terms.
 */
export function p3oV1Loss(input: PairBatch, options?: Partial<P3OOptions>): P3OLossResult {
  validatePairBatch(input, FN);
  const { klCoef, clipRange, ratioClip } = resolveP3OOptions(options, FN);
  return tf.tidy(() => {
    const [l1, l2] = input.logRatio;
    const [o1, o2] = input.oldLogRatio;
    const [r1, r2] = input.reward;
    const s1 = stopGradient(l1);
    const s2 = stopGradient(l2);

    const q = pairQ(r1, r2, s1, s2, klCoef);
    // Detached, clamped weights from the detached log-ratios (no 0·∞ can reach the gradient).
    const sgRho1 = tf.exp(tf.sub(s1, o1));
    const sgRho2 = tf.exp(tf.sub(s2, o2));
    const w1 = tf.clipByValue(sgRho1, 1 / ratioClip, ratioClip);
    const w2 = tf.clipByValue(sgRho2, 1 / ratioClip, ratioClip);

    const rho1 = tf.exp(tf.sub(l1, o1));
    const rho2 = tf.exp(tf.sub(l2, o2));
    const lo = 1 - clipRange;
    const hi = 1 + clipRange;
    const coefA = tf.mul(tf.neg(q), w2); // advantage +q for y1, detached
    const coefB = tf.mul(q, w1); // advantage −q for y2, detached
    const a = tf.mul(coefA, rho1);
    const aClip = tf.mul(coefA, tf.clipByValue(rho1, lo, hi));
    const b = tf.mul(coefB, rho2);
    const bClip = tf.mul(coefB, tf.clipByValue(rho2, lo, hi));
    // First arguments win ties (unclipped branch): see TSDoc.
    const perPairLoss = tf.mul(tf.add(tf.maximum(a, aClip), tf.maximum(b, bClip)), 0.5) as tf.Tensor1D;
    const loss = tf.mean(perPairLoss) as tf.Scalar;

    const clipped = tf.concat([tf.greater(aClip, a), tf.greater(bClip, b)]);
    const ratios = tf.concat([sgRho1, sgRho2]);
    return {
      loss,
      perPairLoss,
      stats: {
        'loss/policy': tf.clone(loss),
        'policy/clipfrac': tf.mean(tf.cast(clipped, 'float32')) as tf.Scalar,
        'policy/ratio_mean': tf.mean(ratios) as tf.Scalar,
        'policy/ratio_min': tf.min(ratios) as tf.Scalar,
        'policy/ratio_max': tf.max(ratios) as tf.Scalar,
        ...pairStats(q, r1, r2, s1, s2),
      },
    };
  });
}
