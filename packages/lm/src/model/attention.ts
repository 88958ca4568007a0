/**
 * Causal multi-head attention with an additive bias for causality and key padding.
 * Callers run these inside `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedMaskedSoftmax, fusedPrefixAttention } from '@relign/tensor';

/**
 * Large negative bias for disallowed keys. Finite on purpose: a query row whose keys are all masked (a pad
 * position under left padding) then gets a uniform softmax instead of NaN (-Inf - -Inf).
 */
export const MASK_BIAS = -1e9;

/**
 * The additive attention bias, built once per forward and shared by every layer.
 * Query i (absolute position tPast + i in the key sequence) may attend to key j iff j <= tPast + i and
 * `keyMask[b, j] == 1`.
 *
 * @param keyMask [B, Tk] float32 0/1, Tk = tPast + T. @returns [B, 1, T, Tk]: 0 where allowed, -1e9 elsewhere.
 */
export function attentionBias(keyMask: tf.Tensor2D, tPast: number, T: number): tf.Tensor4D {
  const [B, Tk] = keyMask.shape;
  const rows = tf.reshape(tf.range(tPast, tPast + T, 1, 'int32'), [T, 1]);
  const cols = tf.reshape(tf.range(0, Tk, 1, 'int32'), [1, Tk]);
  const causal = tf.reshape(tf.cast(tf.lessEqual(cols, rows), 'float32'), [1, 1, T, Tk]);
  const keep = tf.mul(causal, tf.reshape(keyMask, [B, 1, 1, Tk]));
  return tf.mul(tf.sub(keep, 1), -MASK_BIAS) as tf.Tensor4D;
}

/**
 * The causal part of {@link attentionBias} alone, for batches without padding: query i (absolute
 * position tPast + i) may attend to keys 0..tPast + i. @returns [1, 1, T, tPast + T].
 */
export function causalBias(tPast: number, T: number): tf.Tensor4D {
  const rows = tf.reshape(tf.range(tPast, tPast + T, 1, 'int32'), [T, 1]);
  const cols = tf.reshape(tf.range(0, tPast + T, 1, 'int32'), [1, tPast + T]);
  const allowed = tf.cast(tf.lessEqual(cols, rows), 'float32');
  return tf.reshape(tf.mul(tf.sub(allowed, 1), -MASK_BIAS), [1, 1, T, tPast + T]);
}

/**
 * {@link attentionBias} for one query per row (a decode step), whose causal part allows every key:
 * only padded keys are masked. @param keyMask [B, Tk] float32 0/1. @returns [B, 1, 1, Tk].
 */
export function keyPaddingBias(keyMask: tf.Tensor2D): tf.Tensor4D {
  const [B, Tk] = keyMask.shape;
  return tf.reshape(tf.mul(tf.sub(keyMask, 1), -MASK_BIAS), [B, 1, 1, Tk]);
}

/**
 * [B*T, D] -> [B, H, T, Dh]: a reshape to rank 4 then a rank-4 transpose (rank-5 transposes are ~25x slower
 * on wasm). With T = 1 (a decode step) the transpose is a pure reshape.
 */
export function splitHeads(x: tf.Tensor2D, B: number, T: number, H: number): tf.Tensor4D {
  const Dh = x.shape[1] / H;
  if (T === 1) return tf.reshape(x, [B, H, 1, Dh]);
  return tf.transpose(tf.reshape(x, [B, T, H, Dh]), [0, 2, 1, 3]);
}

/**
 * A decode step's fused projection [B, 3D] (q | k | v per row, T = 1) -> q, k, v as [B, H, 1, Dh]: one
 * reshape and one split (each part is a contiguous run of every row), instead of a split and three
 * reshapes.
 */
export function splitQkvHeads(qkv: tf.Tensor2D, H: number): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const [B, D3] = qkv.shape;
  const heads = tf.reshape(qkv, [B, 3 * H, 1, D3 / (3 * H)]);
  return tf.split(heads, 3, 1) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
}

/** [B, H, T, Dh] -> [B*T, H*Dh], the inverse of {@link splitHeads}. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor2D {
  const [B, H, T, Dh] = x.shape;
  if (T === 1) return tf.reshape(x, [B, H * Dh]);
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B * T, H * Dh]);
}

/**
 * Query rows (per key/value head) up to which a decode step over a cache runs, on wasm without a gradient
 * tape, as one fused kernel reading k/v in place (`fusedPrefixAttention`): T = 1 times the group size under
 * grouped-query attention, or a few tokens. Longer queries are matrix products, where the GEMM is faster.
 */
export const FUSED_ATTENTION_MAX_ROWS = 16;

/**
 * softmax(q k^T * scale + bias) v over the first `length` key positions.
 *
 * On wasm: a decode step (`overCache`, at most {@link FUSED_ATTENTION_MAX_ROWS} query rows, no gradient
 * tape) is one kernel that reads k/v in place (a preallocated KV cache is neither sliced nor copied);
 * otherwise the masked softmax is one kernel each way (`fusedMaskedSoftmax`). Other backends: the ops.
 *
 * @param q [B, H, T, Dh]; @param k [B, H, Tk, Dh] (or a preallocated buffer with more positions than
 *   `length`); @param v like k;
 * @param bias [B or 1, 1, T, length] from {@link attentionBias} (or {@link causalBias},
 *   {@link keyPaddingBias}); undefined when every query may see every key (one query, no padding).
 * @param scale usually 1/sqrt(Dh).
 * @param length key positions used (default all of k's).
 * @param overCache whether the keys continue a KV cache (a decode step): only then is the fused kernel
 *   used, so a forward without a cache gives the same bits with and without a gradient tape (the fused
 *   kernel rounds slightly differently from the matrix products).
 * @returns [B, H, T, Dh].
 */
export function attend(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor4D | undefined,
  scale: number,
  length = k.shape[2],
  overCache = false,
): tf.Tensor4D {
  if (overCache && q.shape[2] <= FUSED_ATTENTION_MAX_ROWS) {
    const fused = fusedPrefixAttention(q, k, v, bias, length, scale);
    if (fused !== null) return fused;
  }
  if (length < k.shape[2]) {
    const [B, H, , Dh] = k.shape;
    k = tf.slice(k, [0, 0, 0, 0], [B, H, length, Dh]);
    v = tf.slice(v, [0, 0, 0, 0], [B, H, length, Dh]);
  }
  // Scaling q (T*Dh values per head) is cheaper than scaling the scores (T*Tk).
  const qs = scale === 1 ? q : tf.mul(q, scale);
  const raw = tf.matMul(qs, k, false, true);
  const probs = bias === undefined ? tf.softmax(raw) : fusedMaskedSoftmax(raw, bias);
  return tf.matMul(probs, v) as tf.Tensor4D;
}
