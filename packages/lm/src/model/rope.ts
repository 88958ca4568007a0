/**
 * Rotary position embeddings in Hugging Face's "rotate half" convention (`LlamaRotaryEmbedding` and
 * `apply_rotary_pos_emb`): dimension i of a head is paired with dimension i + Dh/2 (not with its neighbour,
 * as in the original RoPE paper), and both halves share the frequencies `inv_freq`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaConfig } from './llama-config.js';

/**
 * The Dh/2 rotation frequencies `1 / theta^(2i / Dh)`, with Llama 3's `rope_scaling` applied when set
 * (HF `_compute_llama3_parameters`: long wavelengths divided by `factor`, short ones kept, a smooth blend
 * in between). Computed in float64 and rounded once to float32.
 */
export function inverseFrequencies(config: LlamaConfig): Float32Array {
  const dim = config.head_dim;
  const base = Array.from({ length: dim / 2 }, (_, i) => 1 / config.rope_theta ** ((2 * i) / dim));
  const s = config.rope_scaling;
  if (s === null) return Float32Array.from(base);
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  return Float32Array.from(
    base.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / s.factor;
      const smooth =
        (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
        (s.high_freq_factor - s.low_freq_factor);
      return (1 - smooth) * (f / s.factor) + smooth * f;
    }),
  );
}

/**
 * cos and sin of the rotation angles `position * inv_freq`, duplicated over both halves of the head.
 *
 * @param positions [Bp, T] float32 position ids (Bp = B, or 1 when every row shares them).
 * @param invFreq [Dh/2].
 * @returns cos, sin as [Bp, 1, T, Dh], broadcastable over heads of [B, H, T, Dh].
 */
export function rotaryTables(
  positions: tf.Tensor2D,
  invFreq: tf.Tensor1D,
): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const [Bp, T] = positions.shape;
  const half = invFreq.shape[0];
  const angles = tf.mul(tf.reshape(positions, [Bp, T, 1]), tf.reshape(invFreq, [1, 1, half]));
  const full = tf.reshape(tf.concat([angles, angles], 2), [Bp, 1, T, 2 * half]);
  return { cos: tf.cos(full) as tf.Tensor4D, sin: tf.sin(full) as tf.Tensor4D };
}

/** `x * cos + rotate_half(x) * sin` with `rotate_half(x) = [-x2, x1]`. @param x [B, H, T, Dh]. */
export function applyRotary(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const [B, H, T, Dh] = x.shape;
  const x1 = tf.slice(x, [0, 0, 0, 0], [B, H, T, Dh / 2]);
  const x2 = tf.slice(x, [0, 0, 0, Dh / 2], [B, H, T, Dh / 2]);
  const rotated = tf.concat([tf.neg(x2), x1], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
}
