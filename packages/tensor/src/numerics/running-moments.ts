/**
 * Running mean and standard deviation of a scalar stream, merged batch by batch (docs/algorithms.md §2.3; test vector
 * T15). Used to scale rewards by their running std (`use_reward_scaling`, trlx `scale_reward="running"`)
 * or to normalise them (`use_reward_norm`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { describeValue } from '../validate.js';

/** Serialized {@link RunningMoments} state (plain JSON). */
export interface RunningMomentsState {
  /** Running mean μ. */
  mean: number;
  /** Running **biased** variance v (the merge rule needs the biased form). */
  var: number;
  /** Number of values seen, plus the 1e-24 prior count. */
  count: number;
}

/** What {@link RunningMoments.update} returns: statistics of the batch alone. */
export interface BatchMoments {
  batchMean: number;
  /** Unbiased (Bessel-corrected) std of the batch; 0 for a batch of one value. */
  batchStd: number;
}

/** Host values {@link RunningMoments.update} accepts (a tensor goes through {@link RunningMoments.updateFromTensor}). */
export type MomentValues = readonly number[] | Float32Array | Float64Array;

/**
 * Float32 machine epsilon, added to σ before dividing in {@link RunningMoments.scale} and
 * {@link RunningMoments.normalize}, as TRL does (`σ + finfo(float32).eps`, docs/algorithms.md §2.3), so a zero σ
 * cannot produce Infinity.
 */
export const RUNNING_MOMENTS_EPS = 1.1920929e-7;

const PRIOR_COUNT = 1e-24;

/**
 * Running moments with state `(μ, v, n) = (0, 1, 1e-24)` and the merge rule of docs/algorithms.md §2.3: for a batch of
 * `k` values with mean `m_b` and biased variance `v_b`,
 *
 *     δ = m_b − μ;  N = n + k;  μ ← μ + δ·k/N;  v ← (v·n + δ²·n·k/N + v_b·k)/N;  n ← N
 *
 * and `σ = sqrt(v·N/(N − 1))`, the unbiased std of everything seen. Accumulation is in float64 on the
 * host (statistics of a few hundred rewards per step; a tensor is read once, asynchronously).
 */
export class RunningMoments {
  #mean = 0;
  #var = 1;
  #count = PRIOR_COUNT;

  /**
   * Merges a batch into the state (the state is updated **before** use, docs/algorithms.md §2.3) and returns the batch's
   * own mean and unbiased std.
   *
   * @param values a non-empty host array of finite numbers (for a tensor: {@link updateFromTensor}).
   *   Non-finite values throw (a single NaN would poison the state forever).
   */
  update(values: MomentValues): BatchMoments {
    return this.#merge(toArray(values, 'update'), 'update');
  }

  /**
   * {@link update} from a tensor (any shape; all elements count), read back once and asynchronously: a
   * synchronous read would stall a GPU backend between kernels (and fails on WebGPU in Node).
   */
  async updateFromTensor(values: tf.Tensor): Promise<BatchMoments> {
    if (!(values instanceof tf.Tensor)) {
      throw new TypeError(
        `RunningMoments.updateFromTensor: \`values\` must be a tf.Tensor, got ${describeValue(values)}; ` +
          'pass host arrays to update().',
      );
    }
    if (values.isDisposed) {
      throw new Error('RunningMoments.updateFromTensor: `values` tensor has been disposed.');
    }
    return this.#merge(await values.data(), 'updateFromTensor');
  }

  #merge(xs: ArrayLike<number>, fn: string): BatchMoments {
    if (xs.length === 0) {
      throw new Error(`RunningMoments.${fn}: \`values\` is empty; pass at least one value.`);
    }
    let bad = 0;
    let sum = 0;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      if (!Number.isFinite(x)) bad++;
      else sum += x;
    }
    if (bad > 0) {
      throw new Error(
        `RunningMoments.${fn}: ${bad} of ${xs.length} values are not finite (NaN or ±Infinity); ` +
          'filter or mask them out before updating the running statistics.',
      );
    }
    const k = xs.length;
    const batchMean = sum / k;
    let ss = 0; // two-pass sum of squared deviations (stable for large means)
    for (let i = 0; i < k; i++) {
      const d = xs[i]! - batchMean;
      ss += d * d;
    }
    const batchVar = ss / k; // biased, as the merge rule needs

    const delta = batchMean - this.#mean;
    const total = this.#count + k;
    this.#mean += (delta * k) / total;
    this.#var = (this.#var * this.#count + (delta * delta * this.#count * k) / total + batchVar * k) / total;
    this.#count = total;

    return { batchMean, batchStd: k > 1 ? Math.sqrt(ss / (k - 1)) : 0 };
  }

  /** Running mean μ (0 before any update). */
  get mean(): number {
    return this.#mean;
  }

  /**
   * Running unbiased std `sqrt(v·N/(N − 1))`. While fewer than two values have been seen (N ≤ 1) the
   * correction is undefined and this returns 1, the initial std of the reference code (trlx/MOSS), so
   * scaling is the identity until there is data.
   */
  get std(): number {
    const n = this.#count;
    if (n <= 1) return 1;
    return Math.sqrt((this.#var * n) / (n - 1));
  }

  /** Running biased variance v (the stored state). */
  get variance(): number {
    return this.#var;
  }

  /** Number of values merged so far (plus the 1e-24 prior). */
  get count(): number {
    return this.#count;
  }

  /** `x / (σ + eps)`: reward scaling without mean subtraction (`use_reward_scaling`, docs/algorithms.md §2.3). */
  scale(x: number): number;
  scale(x: readonly number[]): number[];
  scale(x: Float32Array): Float32Array;
  scale(x: tf.Tensor): tf.Tensor;
  scale(
    x: number | readonly number[] | Float32Array | tf.Tensor,
  ): number | number[] | Float32Array | tf.Tensor {
    return this.#apply(x, 0, this.std + RUNNING_MOMENTS_EPS, 'scale');
  }

  /** `(x − μ) / (σ + eps)`: reward normalisation (`use_reward_norm`, docs/algorithms.md §2.3). */
  normalize(x: number): number;
  normalize(x: readonly number[]): number[];
  normalize(x: Float32Array): Float32Array;
  normalize(x: tf.Tensor): tf.Tensor;
  normalize(
    x: number | readonly number[] | Float32Array | tf.Tensor,
  ): number | number[] | Float32Array | tf.Tensor {
    return this.#apply(x, this.#mean, this.std + RUNNING_MOMENTS_EPS, 'normalize');
  }

  #apply(
    x: number | readonly number[] | Float32Array | tf.Tensor,
    shift: number,
    div: number,
    fn: string,
  ): number | number[] | Float32Array | tf.Tensor {
    if (typeof x === 'number') return (x - shift) / div;
    if (x instanceof tf.Tensor) return tf.tidy(() => tf.div(tf.sub(x, shift), div));
    if (x instanceof Float32Array) return x.map((v) => (v - shift) / div);
    if (Array.isArray(x)) return x.map((v: number) => (v - shift) / div);
    throw new TypeError(
      `RunningMoments.${fn}: expected a number, number[], Float32Array or tf.Tensor, got ${describeValue(x)}.`,
    );
  }

  /** The state as plain JSON (for checkpoints). */
  toJSON(): RunningMomentsState {
    return { mean: this.#mean, var: this.#var, count: this.#count };
  }

  /** Restores a state written by {@link toJSON} (an object or its JSON string); validates every field. */
  static fromJSON(json: RunningMomentsState | string): RunningMoments {
    let obj: unknown = json;
    if (typeof json === 'string') {
      try {
        obj = JSON.parse(json);
      } catch (e) {
        throw new Error(`RunningMoments.fromJSON: not valid JSON (${(e as Error).message}).`);
      }
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new Error(
        `RunningMoments.fromJSON: expected an object {mean, var, count}, got ${describeValue(obj)}.`,
      );
    }
    const o = obj as Record<string, unknown>;
    const field = (name: 'mean' | 'var' | 'count', ok: (v: number) => boolean, rule: string): number => {
      const v = o[name];
      if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
        throw new Error(
          `RunningMoments.fromJSON: field \`${name}\` must be ${rule}, got ${describeValue(v)}.`,
        );
      }
      return v;
    };
    const rm = new RunningMoments();
    rm.#mean = field('mean', () => true, 'a finite number');
    rm.#var = field('var', (v) => v >= 0, 'a finite number >= 0');
    rm.#count = field('count', (v) => v > 0, 'a finite number > 0');
    return rm;
  }
}

function toArray(values: MomentValues, fn: string): ArrayLike<number> {
  if ((values as unknown) instanceof tf.Tensor) {
    throw new TypeError(
      `RunningMoments.${fn}: \`values\` is a tf.Tensor; use \`await moments.updateFromTensor(values)\`, which ` +
        'reads it asynchronously (a synchronous read stalls GPU backends).',
    );
  }
  if (Array.isArray(values) || values instanceof Float32Array || values instanceof Float64Array) {
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== 'number') {
        throw new TypeError(
          `RunningMoments.${fn}: \`values[${i}]\` is ${describeValue(values[i])}, expected a number.`,
        );
      }
    }
    return values;
  }
  throw new TypeError(
    `RunningMoments.${fn}: \`values\` must be a number[], Float32Array or Float64Array, got ${describeValue(values)}.`,
  );
}
