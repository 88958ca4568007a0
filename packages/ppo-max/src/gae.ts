/**
 * Generalised advantage estimation (docs/algorithms.md §2.5, §4.5; test vectors T7, T8).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkInputObject, checkNumber, checkOptions, checkTensor } from './validate.js';

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
 * docs/algorithms.md §6), so it runs on the host in float64: the inputs are read once (`dataSync`) and the results are
 * uploaded as new float32 tensors.
 *
 * @param rewards float32 `[B, T]` per-token rewards (e.g. from `tokenRewards`).
 * @param values float32 `[B, T]` critic values at rollout time (`V_old`), aligned with `rewards`.
 * @param mask `[B, T]` (bool, int32 or float32): non-zero at valid response tokens (stop token included).
 * @returns new tensors owned by the caller; the inputs are not disposed.
 * @throws Error naming the argument for a wrong type/shape, γ or λ outside [0, 1], or a non-finite reward or
 *   value at a valid position.
 */
export function gae(
  rewards: tf.Tensor2D,
  values: tf.Tensor2D,
  mask: tf.Tensor2D,
  options: GaeOptions,
): GaeResult {
  const input = checkInputObject({ rewards, values, mask }, ['rewards', 'values', 'mask'], FN);
  const r = checkTensor(input, 'rewards', FN, { rank: 2, layout: '[B, T]' });
  const shape = r.shape;
  const v = checkTensor(input, 'values', FN, { rank: 2, layout: '[B, T]', shape });
  const m = checkTensor(input, 'mask', FN, { rank: 2, layout: '[B, T]', shape, anyDtype: true });
  const o = checkOptions(options, ['gamma', 'lambda'], FN);
  const gamma = checkNumber(
    o.gamma,
    'options.gamma',
    FN,
    (x) => x >= 0 && x <= 1,
    'in [0, 1] (the discount γ; 1 in PPO-max)',
  );
  const lambda = checkNumber(
    o.lambda,
    'options.lambda',
    FN,
    (x) => x >= 0 && x <= 1,
    'in [0, 1] (GAE λ; 0.95 in PPO-max)',
  );
  const [B, T] = shape as [number, number];
  const rs = r.dataSync();
  const vs = v.dataSync();
  const ms = m.dataSync();
  const adv = new Float32Array(B * T);
  const ret = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    let nextValue = 0;
    let nextAdv = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      if (!ms[i]) continue;
      const rt = rs[i]!;
      const vt = vs[i]!;
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
  return { advantages: tf.tensor2d(adv, [B, T], 'float32'), returns: tf.tensor2d(ret, [B, T], 'float32') };
}
