/**
 * Generalised advantage estimation (docs/algorithms.md §2.5, §4.5; test vectors T7, T8).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, checkOptions } from '@relign/tensor';
import { checkTokenInputs } from './inputs.js';

const FN = 'gae';

export interface GaeOptions {
  /** γ, the discount, in [0, 1]. PPO-max, TRL, OpenRLHF: 1 (docs/algorithms.md §2.5, §4.8). */
  gamma: number;
  /** λ, the GAE trace parameter, in [0, 1]. PPO-max code: 0.95 (docs/algorithms.md §2.5). */
  lambda: number;
}

export type GaeResult = {
  /** `[B, T]` float32 advantages `A_t` (not whitened), 0 where the mask is 0. */
  advantages: tf.Tensor2D;
  /** `[B, T]` float32 returns `R_t = A_t + V_t` (from the un-whitened advantages), 0 where the mask is 0. */
  returns: tf.Tensor2D;
};

/**
 * GAE over each row's valid positions, walking backwards:
 *
 *     δ_t = r_t + γ·V_next − V_t,   A_t = δ_t + γλ·A_next,   R_t = A_t + V_t
 *
 * where `V_next`, `A_next` belong to the next **valid** position of the row (0 past the last one: `V_T := 0`,
 * `A_T := 0`). Positions with `mask = 0` are skipped entirely (their reward and value are never read, so NaN
 * or junk there is harmless) and get `A = R = 0`. For right-padded rows this is exactly docs/algorithms.md §4.5 with rewards
 * and values zeroed at padding first (T8); it also gives the same result for any other padding layout
 * (left padding, holes) as for the row with the padding removed.
 *
 * The recursion is sequential in T and its inputs are data (no gradient flows through advantages or returns,
 * docs/algorithms.md §6), so it runs on the host in float64 ({@link gaeOnHost}): the three inputs are read back
 * together in one asynchronous read and the results are uploaded as new float32 tensors.
 *
 * @param rewards float32 `[B, T]` per-token rewards (e.g. from `tokenRewards`).
 * @param values float32 `[B, T]` critic values at rollout time (`V_old`), aligned with `rewards`.
 * @param mask `[B, T]` (bool, int32 or float32): non-zero at valid response tokens (stop token included).
 * @returns new tensors owned by the caller; the inputs are not disposed.
 * @throws Error (synchronously) naming the argument for a wrong type/shape or γ or λ outside [0, 1]; the
 *   promise rejects for a non-finite reward or value at a valid position.
 */
export function gae(
  rewards: tf.Tensor2D,
  values: tf.Tensor2D,
  mask: tf.Tensor2D,
  options: GaeOptions,
): Promise<GaeResult> {
  const input = checkTokenInputs({ rewards, values, mask }, ['rewards', 'values', 'mask'], FN);
  const { gamma, lambda } = checkGaeOptions(options);
  const [B, T] = input.rewards.shape as [number, number];
  // One read of [rewards; values; mask] (the mask as 0/1 float32: only its non-zero-ness is used).
  const stacked = tf.tidy(() => tf.stack([input.rewards, input.values, tf.cast(input.mask, 'float32')]));
  return (async () => {
    let host: Float32Array;
    try {
      host = (await stacked.data()) as Float32Array;
    } finally {
      stacked.dispose();
    }
    const n = B * T;
    const r = gaeOnHost(host.subarray(0, n), host.subarray(n, 2 * n), host.subarray(2 * n), [B, T], {
      gamma,
      lambda,
    });
    return {
      advantages: tf.tensor2d(r.advantages, [B, T], 'float32'),
      returns: tf.tensor2d(r.returns, [B, T], 'float32'),
    };
  })();
}

/**
 * {@link gae} on host arrays (row-major `[B, T]`), in float64: what the plugin runs on data it already holds
 * on the host. Returns float32 advantages and returns, 0 where the mask is 0.
 *
 * @throws Error naming the position of a non-finite reward or value at a valid position.
 */
export function gaeOnHost(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  mask: ArrayLike<number>,
  [B, T]: readonly [number, number],
  options: GaeOptions,
): { advantages: Float32Array; returns: Float32Array } {
  const { gamma, lambda } = checkGaeOptions(options);
  for (const [name, a] of [
    ['rewards', rewards],
    ['values', values],
    ['mask', mask],
  ] as const) {
    if (a.length !== B * T)
      throw new Error(`${FN}: \`${name}\` has ${a.length} entries, expected B·T = ${B * T}.`);
  }
  const adv = new Float32Array(B * T);
  const ret = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    let nextValue = 0;
    let nextAdv = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      if (!mask[i]) continue;
      const rt = rewards[i]!;
      const vt = values[i]!;
      if (!Number.isFinite(rt))
        throw new Error(`${FN}: rewards[${b}, ${t}] = ${rt} is not finite at a valid position.`);
      if (!Number.isFinite(vt))
        throw new Error(`${FN}: values[${b}, ${t}] = ${vt} is not finite at a valid position.`);
      const delta = rt + gamma * nextValue - vt;
      const a = delta + gamma * lambda * nextAdv;
      adv[i] = a;
      ret[i] = a + vt;
      nextValue = vt;
      nextAdv = a;
    }
  }
  return { advantages: adv, returns: ret };
}

function checkGaeOptions(options: GaeOptions): GaeOptions {
  const o = checkOptions(options, ['gamma', 'lambda'], FN);
  const unit = (x: number) => x >= 0 && x <= 1;
  return {
    gamma: checkNumber(o.gamma, 'options.gamma', FN, unit, 'in [0, 1] (the discount γ; 1 in PPO-max)'),
    lambda: checkNumber(o.lambda, 'options.lambda', FN, unit, 'in [0, 1] (GAE λ; 0.95 in PPO-max)'),
  };
}
