/**
 * A batch of pairs: the input every pairwise loss (P3O-V1, P3O-V2, online DPO) takes, its checks, and the
 * conversions between per-row values (rows `2i`, `2i + 1` answer prompt i, docs/algorithms.md §1.1) and pair
 * tensors `[y1, y2]` (docs/algorithms.md §1.8b).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkObject, checkTensor, describeValue } from '@relign/tensor';

/**
 * One minibatch of B prompt pairs (docs/algorithms.md §1.8b). Index 0 is response y1, index 1 is y2; all six tensors are
 * float32 with shape `[B]`.
 */
export interface PairBatch {
  /** `L_θ(y_k) = S_θ(y_k) − S_ref(y_k)` under the current policy: carries the gradient. */
  logRatio: readonly [tf.Tensor1D, tf.Tensor1D];
  /** `L_old(y_k)` stored at rollout (data; no gradient is taken through it). */
  oldLogRatio: readonly [tf.Tensor1D, tf.Tensor1D];
  /** Processed rewards `r_k` (docs/algorithms.md §1.7); only `r1 − r2` matters (docs/algorithms.md §1.10). */
  reward: readonly [tf.Tensor1D, tf.Tensor1D];
}

const PAIR_FIELDS = ['logRatio', 'oldLogRatio', 'reward'] as const;

/**
 * Checks the six input tensors of a pair loss (docs/algorithms.md §1.8b shapes) and returns B. Errors name the
 * offending field and `fn` (the calling loss).
 */
export function validatePairBatch(input: unknown, fn: string): number {
  const rec = checkObject(input, 'input', fn, PAIR_FIELDS);
  let batch: number | undefined;
  for (const field of PAIR_FIELDS) {
    const pair = rec[field];
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(
        `${fn}: \`input.${field}\` must be a pair [y1, y2] of float32 Tensor1D of shape [B], got ${describeValue(pair)}.`,
      );
    }
    for (let k = 0; k < 2; k++) {
      const name = `input.${field}[${k}]`;
      const t = checkTensor(pair[k], name, fn, { rank: 1, layout: '[B] (one value per pair)' });
      const b = t.shape[0] as number;
      if (batch === undefined) {
        if (b < 1) throw new Error(`${fn}: \`${name}\` is empty; a minibatch needs at least one pair.`);
        batch = b;
      } else if (b !== batch) {
        throw new Error(
          `${fn}: \`${name}\` must have shape [B] = [${batch}] like \`input.logRatio[0]\`, got [${b}].`,
        );
      }
    }
  }
  return batch as number;
}

/**
 * Splits per-row values `[2P]` (rows `2i`, `2i + 1` = the pair of prompt i) into `[y1 values, y2 values]`, each
 * `[P]`. Differentiable (reshape + unstack).
 */
export function splitPairs(x: tf.Tensor1D): [tf.Tensor1D, tf.Tensor1D] {
  const n = x.shape[0];
  if (n % 2 !== 0)
    throw new Error(`splitPairs: ${n} rows is not a whole number of pairs (2 rows per prompt).`);
  return tf.tidy(() => tf.unstack(tf.reshape(x, [n / 2, 2]), 1) as [tf.Tensor1D, tf.Tensor1D]);
}

/** Host per-row values `[2P]` → float32 pair tensors `[y1, y2]`, each `[P]` (caller-owned). */
export function pairTensors(values: ArrayLike<number>): [tf.Tensor1D, tf.Tensor1D] {
  if (values.length % 2 !== 0)
    throw new Error(`pairTensors: ${values.length} rows is not a whole number of pairs.`);
  const P = values.length / 2;
  const a = new Float32Array(P);
  const b = new Float32Array(P);
  for (let i = 0; i < P; i++) {
    a[i] = values[2 * i]!;
    b[i] = values[2 * i + 1]!;
  }
  return [tf.tensor1d(a, 'float32'), tf.tensor1d(b, 'float32')];
}
