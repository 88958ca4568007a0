/**
 * Advantage normalisation and clipping of PPO-max (docs/algorithms.md §2.6, §4.5; test vector T7).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, checkOptions, maskedWhiten } from '@relign/tensor';
import { checkTokenInputs, maskBool, select } from './inputs.js';

const FN = 'whitenAdvantages';

export interface WhitenAdvantagesOptions {
  /** Unbiased variance (TRL) or biased (MOSS / OpenRLHF, the default here: docs/algorithms.md §2.6). */
  unbiased?: boolean;
  /** Added to the variance under the square root. Default 1e-6 (MOSS `utils.py : whiten`, docs/algorithms.md §2.6). */
  eps?: number;
  /** `Â ← clip(Â, −c, c)` after whitening when `c > 0` (MOSS `use_advantage_clip`, c = 0.5). Default 0 = off. */
  clip?: number;
}

/**
 * `Â = (A − μ)·rsqrt(σ² + eps)` with μ, σ² the mean and variance over the valid positions of the whole input
 * (pass one minibatch for MOSS's per-minibatch whitening, or the whole rollout for TRL/OpenRLHF's), then the
 * optional clip, then 0 at masked positions (as TRL HEAD does, so nothing downstream reads junk there).
 *
 * T7 (one row, eps 1e-8): A = [0.429627, 0.536450, 0.691000, 0.780000] → unbiased [−1.148450, −0.465534,
 * 0.522504, 1.091480], biased [−1.326116, −0.537552, 0.603335, 1.260333].
 *
 * @param advantages float32 `[B, T]` (data; not meant to be differentiated).
 * @param mask `[B, T]`, non-zero at valid tokens.
 * @returns a new float32 `[B, T]` tensor owned by the caller; the inputs are not disposed.
 */
export function whitenAdvantages(
  advantages: tf.Tensor2D,
  mask: tf.Tensor2D,
  options: WhitenAdvantagesOptions = {},
): tf.Tensor2D {
  const { advantages: adv, mask: m } = checkTokenInputs({ advantages, mask }, ['advantages', 'mask'], FN);
  const o = checkOptions(options, ['unbiased', 'eps', 'clip'], FN);
  const unbiased = o.unbiased ?? false;
  if (typeof unbiased !== 'boolean') throw new TypeError(`${FN}: \`options.unbiased\` must be a boolean.`);
  const eps = checkNumber(o.eps ?? 1e-6, 'options.eps', FN, (x) => x >= 0 && Number.isFinite(x), '>= 0');
  const clip = checkNumber(
    o.clip ?? 0,
    'options.clip',
    FN,
    (x) => x >= 0 && Number.isFinite(x),
    '>= 0 (0 = no clipping)',
  );
  return tf.tidy(() => {
    const cond = maskBool(m);
    // Select before whitening: junk at masked positions must not reach the statistics or the output.
    let w = maskedWhiten(select(cond, adv), cond, { unbiased, eps });
    if (clip > 0) w = tf.clipByValue(w, -clip, clip);
    return select(cond, w) as tf.Tensor2D;
  });
}
