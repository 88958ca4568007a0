/**
 * Pieces shared by the P3O losses (spec §1.2–§1.5, §1.8b): input and option checks, a stop-gradient,
 * the detached KL-regularised reward difference `q`, and the pair statistics every P3O variant logs.
 *
 * The same file lives in `@relign/p3o-v1` and `@relign/p3o-v2` (neither package depends on the other);
 * keep the two copies identical.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * One minibatch of B prompt pairs (spec §1.8b). Index 0 is response y1, index 1 is y2; all six tensors
 * are float32 with shape `[B]`.
 */
export interface P3OPairBatch {
  /** `L_θ(y_k) = S_θ(y_k) − S_ref(y_k)` under the current policy: carries the gradient. */
  logRatio: readonly [tf.Tensor1D, tf.Tensor1D];
  /** `L_old(y_k)` stored at rollout (data; no gradient is taken through it). */
  oldLogRatio: readonly [tf.Tensor1D, tf.Tensor1D];
  /** Processed rewards `r_k` (spec §1.7); only `r1 − r2` matters (spec §1.10). */
  reward: readonly [tf.Tensor1D, tf.Tensor1D];
}

/** Loss options (spec §1.9 defaults: β = 0.05, ε = 0.2, c = 10). */
export interface P3OOptions {
  /** β ≥ 0: weight of the sequence-level KL penalty inside `q` (spec §1.2). */
  klCoef: number;
  /** ε > 0: the PPO-style update clip (spec §1.4 on the pair log-ratio, §1.5 on each ratio). */
  clipRange: number;
  /** c > 1: the detached importance weights are clamped to `[1/c, c]` (spec §1.4, §1.5). */
  ratioClip: number;
}

/** Defaults of the authors' code (spec §1.9). */
export const P3O_DEFAULT_OPTIONS: Readonly<P3OOptions> = Object.freeze({
  klCoef: 0.05,
  clipRange: 0.2,
  ratioClip: 10,
});

/**
 * Statistics logged with every P3O loss (stable names, spec §1.4). All are float32 scalars with no
 * gradient path into the loss.
 */
export interface P3OStats {
  /** The minibatch loss (a clone of `loss`, so a logger may dispose it independently). */
  'policy/loss': tf.Scalar;
  /** Fraction of clipped terms: V2 `mean[a_clip > a]` over pairs; V1 over the 2B per-response terms. */
  'policy/clipfrac': tf.Scalar;
  /** Mean importance-sampling ratio, before the `[1/c, c]` clamp (V2: ρ1ρ2 per pair; V1: ρ1 and ρ2). */
  'policy/ratio_mean': tf.Scalar;
  /** Largest importance-sampling ratio, before the clamp. */
  'policy/ratio_max': tf.Scalar;
  /** Mean of the detached `q` (spec §1.2). */
  'p3o/q_mean': tf.Scalar;
  /** Population (biased) standard deviation of `q` over the minibatch; 0 for B = 1. */
  'p3o/q_std': tf.Scalar;
  /** Mean of `|r1 − r2|` = reward of the higher- minus the lower-reward response (no KL term). */
  'p3o/reward_diff_mean': tf.Scalar;
  /** Mean current log-ratio `L_θ` of the higher-reward response of each pair (y1 on ties). */
  'p3o/logratio_chosen': tf.Scalar;
  /** Mean current log-ratio `L_θ` of the lower-reward response of each pair. */
  'p3o/logratio_rejected': tf.Scalar;
  /** `logratio_chosen − logratio_rejected`. */
  'p3o/logratio_gap': tf.Scalar;
}

/** What a P3O loss returns. Every tensor is owned by the caller (dispose it, or let a tidy do it). */
export interface P3OLossResult {
  /** Minibatch loss, mean over pairs (spec §1.8b); minimise it. Carries the gradient. */
  loss: tf.Scalar;
  /** `loss_i` per pair, shape `[B]` (carries the gradient; `loss` is its mean). */
  perPairLoss: tf.Tensor1D;
  /** Logged statistics, see {@link P3OStats}. */
  stats: P3OStats;
}

const OPTION_KEYS = ['klCoef', 'clipRange', 'ratioClip'] as const;

/** Checks the six input tensors (spec §1.8b shapes) and returns B. Errors name the offending field. */
export function validatePairBatch(input: unknown, fn: string): number {
  if (input === null || typeof input !== 'object') {
    throw new TypeError(
      `${fn}: \`input\` must be an object { logRatio, oldLogRatio, reward }, got ${describe(input)}.`,
    );
  }
  const rec = input as Record<string, unknown>;
  let batch: number | undefined;
  for (const field of ['logRatio', 'oldLogRatio', 'reward'] as const) {
    const pair = rec[field];
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(
        `${fn}: \`input.${field}\` must be a pair [y1, y2] of float32 Tensor1D of shape [B], got ` +
          `${describe(pair)}.`,
      );
    }
    for (let k = 0; k < 2; k++) {
      const t: unknown = pair[k];
      const name = `input.${field}[${k}]`;
      if (!(t instanceof tf.Tensor)) {
        throw new TypeError(`${fn}: \`${name}\` must be a tf.Tensor of shape [B], got ${describe(t)}.`);
      }
      if (t.isDisposed) throw new Error(`${fn}: \`${name}\` has been disposed; pass a live tensor.`);
      if (t.dtype !== 'float32') {
        throw new Error(
          `${fn}: \`${name}\` must be float32, got ${t.dtype}; cast it with tf.cast(x, 'float32').`,
        );
      }
      if (t.rank !== 1) {
        throw new Error(
          `${fn}: \`${name}\` must have rank 1 [B] (one value per pair), got shape [${t.shape.join(', ')}].`,
        );
      }
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

/** Fills in the spec §1.9 defaults and checks ranges; unknown keys (typos such as `kl_coef`) are errors. */
export function resolveOptions(options: Partial<P3OOptions> | undefined, fn: string): P3OOptions {
  if (options === undefined) return { ...P3O_DEFAULT_OPTIONS };
  if (options === null || typeof options !== 'object') {
    throw new TypeError(
      `${fn}: \`options\` must be an object { klCoef, clipRange, ratioClip }, got ${describe(options)}.`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new Error(`${fn}: unknown option \`options.${key}\`; the options are ${OPTION_KEYS.join(', ')}.`);
    }
  }
  const out = { ...P3O_DEFAULT_OPTIONS };
  for (const key of OPTION_KEYS) {
    const v = options[key];
    if (v !== undefined) out[key] = v;
  }
  const check = (key: keyof P3OOptions, ok: (v: number) => boolean, want: string): void => {
    const v: unknown = out[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
      throw new Error(`${fn}: \`options.${key}\` must be a finite number ${want}, got ${describe(v)}.`);
    }
  };
  check('klCoef', (v) => v >= 0, '>= 0 (the KL coefficient β)');
  check('clipRange', (v) => v > 0, '> 0 (the update clip ε)');
  check('ratioClip', (v) => v > 1, '> 1 (importance weights are clamped to [1/c, c])');
  return out;
}

// Value x, gradient zero: `sg(·)` of spec §0. Applied to the *inputs* of the detached quantities (q, w),
// so an overflowing exp() on the detached path can never send 0·∞ = NaN into the gradient.
const stopGradientOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  return { value: tf.clone(x), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
});

/** `sg(x)`: same values as `x`, zero gradient (spec §0). Returns a new tensor. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return stopGradientOp(x) as T;
}

/**
 * `q = (r1 − r2) − β (L1 − L2)` from detached log-ratios (spec §1.2, P3O-1). The reward difference is
 * taken first, so a per-pair shift δ added to both rewards cancels before anything else is rounded
 * (spec §1.10).
 */
export function pairQ(
  r1: tf.Tensor1D,
  r2: tf.Tensor1D,
  sgL1: tf.Tensor1D,
  sgL2: tf.Tensor1D,
  klCoef: number,
): tf.Tensor1D {
  return tf.sub(tf.sub(r1, r2), tf.mul(tf.sub(sgL1, sgL2), klCoef));
}

/** The statistics that depend only on q, rewards and detached log-ratios (spec §1.4 "Logged"). */
export function pairStats(
  q: tf.Tensor1D,
  r1: tf.Tensor1D,
  r2: tf.Tensor1D,
  sgL1: tf.Tensor1D,
  sgL2: tf.Tensor1D,
): Pick<
  P3OStats,
  | 'p3o/q_mean'
  | 'p3o/q_std'
  | 'p3o/reward_diff_mean'
  | 'p3o/logratio_chosen'
  | 'p3o/logratio_rejected'
  | 'p3o/logratio_gap'
> {
  const { mean, variance } = tf.moments(q);
  // y1 is "chosen" when r1 >= r2 (ties go to y1); the condition is data, never differentiated.
  const firstChosen = tf.greaterEqual(r1, r2);
  const chosen = tf.mean(tf.where(firstChosen, sgL1, sgL2)) as tf.Scalar;
  const rejected = tf.mean(tf.where(firstChosen, sgL2, sgL1)) as tf.Scalar;
  return {
    'p3o/q_mean': mean as tf.Scalar,
    'p3o/q_std': tf.sqrt(variance) as tf.Scalar,
    'p3o/reward_diff_mean': tf.mean(tf.abs(tf.sub(r1, r2))) as tf.Scalar,
    'p3o/logratio_chosen': chosen,
    'p3o/logratio_rejected': rejected,
    'p3o/logratio_gap': tf.sub(chosen, rejected),
  };
}

function describe(value: unknown): string {
  if (value instanceof tf.Tensor) return `a ${value.dtype} tensor of shape [${value.shape.join(', ')}]`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return typeof value;
}
