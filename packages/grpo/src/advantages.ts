/**
 * GRPO's group-relative advantages (docs/algorithms.md §8.1; check vector T16a), on the host in float64.
 */

/** How the centred rewards are scaled (docs/algorithms.md §8.1; TRL's `scale_rewards`). */
export type AdvantageScale = 'group' | 'batch' | 'none';

export interface GroupAdvantageOptions {
  /**
   * `'group'` (the paper, TRL's default): divide by the group's std + 1e-4. `'batch'`: by the std of all rewards
   * + 1e-4 (the mean is still per group). `'none'` (Dr. GRPO): do not divide.
   */
  scale?: AdvantageScale;
}

/** Added to the std before dividing (TRL's constant), so a group with identical rewards gives 0, not NaN. */
export const ADVANTAGE_STD_EPS = 1e-4;

const FN = 'groupAdvantages';

/** Unbiased (Bessel) std of `xs[from, to)`, as `torch.std`; 0 for a single value (no spread to scale by). */
function unbiasedStd(xs: readonly number[], from: number, to: number): number {
  const n = to - from;
  if (n < 2) return 0;
  let mean = 0;
  for (let i = from; i < to; i++) mean += xs[i]!;
  mean /= n;
  let ss = 0;
  for (let i = from; i < to; i++) ss += (xs[i]! - mean) ** 2;
  return Math.sqrt(ss / (n - 1));
}

/**
 * `A_i = (r_i − mean_g(r)) / (std(r) + 1e-4)` for every completion i of each group of `groupSize` adjacent
 * rewards (rows `g·G .. g·G + G − 1` answer the same prompt, as in a rollout batch). The mean is the group's;
 * the std is the group's (`scale: 'group'`), the whole batch's (`'batch'`) or none (`'none'`: `A_i = r_i −
 * mean_g(r)`). Std unbiased. The group mean is subtracted before any scaling, so adding δ to every reward of a
 * group leaves its advantages unchanged up to float64 rounding (docs/algorithms.md §8.1); with `'batch'` a
 * per-prompt δ changes the batch std, so only `'group'` and `'none'` are invariant to it.
 *
 * @param rewards one finite reward per completion, grouped by prompt.
 * @param groupSize G, completions per prompt (>= 1; `rewards.length` must be a multiple of it).
 * @returns float64 advantages, same order as `rewards`.
 */
export function groupAdvantages(
  rewards: readonly number[],
  groupSize: number,
  options: GroupAdvantageOptions = {},
): number[] {
  if (!Array.isArray(rewards) && !ArrayBuffer.isView(rewards)) {
    throw new Error(`${FN}: rewards must be an array of numbers, got ${typeof rewards}.`);
  }
  const n = rewards.length;
  if (!Number.isSafeInteger(groupSize) || groupSize < 1) {
    throw new Error(
      `${FN}: groupSize must be an integer >= 1 (completions per prompt), got ${String(groupSize)}.`,
    );
  }
  if (n % groupSize !== 0) {
    throw new Error(
      `${FN}: rewards has ${n} entries, not a multiple of groupSize ${groupSize}; pass whole groups (G adjacent rewards per prompt).`,
    );
  }
  for (let i = 0; i < n; i++) {
    if (typeof rewards[i] !== 'number' || !Number.isFinite(rewards[i])) {
      throw new Error(`${FN}: rewards[${i}] = ${String(rewards[i])} is not a finite number.`);
    }
  }
  const scale = options.scale ?? 'group';
  if (scale !== 'group' && scale !== 'batch' && scale !== 'none') {
    throw new Error(`${FN}: options.scale must be 'group', 'batch' or 'none', got ${String(scale)}.`);
  }
  const batchStd = scale === 'batch' ? unbiasedStd(rewards, 0, n) : 0;
  const out = new Array<number>(n);
  const diffs = new Array<number>(groupSize);
  for (let g = 0; g < n; g += groupSize) {
    // Differences to the group's first reward first: everything below is a function of the differences
    // only, so a per-prompt shift δ cancels before any rounding (with integer rewards and δ, exactly).
    let mean = 0;
    for (let j = 0; j < groupSize; j++) {
      diffs[j] = rewards[g + j]! - rewards[g]!;
      mean += diffs[j]!;
    }
    mean /= groupSize;
    const divisor =
      scale === 'none'
        ? 1
        : (scale === 'group' ? unbiasedStd(diffs, 0, groupSize) : batchStd) + ADVANTAGE_STD_EPS;
    for (let j = 0; j < groupSize; j++) out[g + j] = (diffs[j]! - mean) / divisor;
  }
  return out;
}
