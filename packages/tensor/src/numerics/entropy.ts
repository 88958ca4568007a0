/**
 * Per-token entropy of the sampling distribution `softmax(logits / τ)` (docs/algorithms.md §0, §4.2, §4.9 metrics).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkPositive, checkTensor } from '../validate.js';

const FN = 'entropyFromLogits';

/**
 * Entropy `H = logsumexp(z) − Σ_v softmax(z)_v · z_v` with `z = logits / temperature`.
 *
 * @param logits float32 `[B, T, V]`. Must be finite: mask tokens with a large negative value (e.g. −1e9),
 *   not −Infinity, since `0 · (−∞)` is NaN.
 * @param temperature τ > 0. Default 1.
 * @returns float32 `[B, T]`, in nats.
 *
 * Written as `−Σ p · log p` with `log p = z − logsumexp(z)` (the same quantity, one less reduction);
 * differentiable w.r.t. `logits` on every backend (dense elementwise ops and reductions only).
 */
export function entropyFromLogits(logits: tf.Tensor3D, temperature = 1): tf.Tensor2D {
  checkTensor(logits, 'logits', FN, { rank: 3, layout: '[B, T, V]' });
  checkPositive(temperature, 'temperature', FN);
  return tf.tidy(() => {
    const z = temperature === 1 ? logits : tf.mul(logits, 1 / temperature);
    const logp = tf.logSoftmax(z, -1);
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) as tf.Tensor2D;
  });
}
