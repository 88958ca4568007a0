/**
 * The leave-one-out baseline of RLOO (docs/algorithms.md §9), on the host in float64: each completion's
 * advantage is its reward minus the mean reward of the other k − 1 completions of the same prompt.
 */

/**
 * `A_i = R_i − (1/(k − 1))·Σ_{j≠i} R_j` per group of k adjacent completions (docs/algorithms.md §9, vector T17).
 *
 * Computed as `(1/(k − 1))·Σ_{j≠i} (R_i − R_j)`, the same number in exact arithmetic: only differences of
 * rewards of one prompt enter, so a per-prompt shift δ(x) cancels exactly (for rewards that float64 holds
 * exactly after the shift, e.g. integers) instead of up to rounding.
 *
 * @param rewards one reward per completion, the k completions of a prompt adjacent (length a multiple of k).
 * @param k completions per prompt, at least 2.
 * @throws Error naming the argument when k is not an integer ≥ 2, the length is not a multiple of k, or a
 *   reward is not finite.
 */
export function rlooAdvantages(rewards: ArrayLike<number>, k: number): number[] {
  if (!Number.isInteger(k) || k < 2) {
    throw new Error(
      `rlooAdvantages: k must be an integer >= 2 (the baseline of a completion is the mean of the other ` +
        `completions of its prompt), got ${String(k)}.`,
    );
  }
  const n = rewards?.length;
  if (typeof n !== 'number' || n % k !== 0) {
    throw new Error(
      `rlooAdvantages: rewards.length (${String(n)}) must be a multiple of k (${k}): k completions per ` +
        `prompt, adjacent.`,
    );
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(rewards[i])) {
      throw new Error(`rlooAdvantages: rewards[${i}] is ${String(rewards[i])}; every reward must be finite.`);
    }
  }
  const out = new Array<number>(n);
  for (let g = 0; g < n; g += k) {
    for (let i = 0; i < k; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) if (j !== i) s += rewards[g + i]! - rewards[g + j]!;
      out[g + i] = s / (k - 1);
    }
  }
  return out;
}

/**
 * TRL's `normalize_advantage`: `(A − mean(A)) / (std(A) + 1e-8)` over the whole batch, std unbiased (as
 * `torch.std`). Off by default.
 */
export function whitenAdvantages(advantages: readonly number[]): number[] {
  const n = advantages.length;
  if (n < 2) return advantages.map(() => 0);
  const mean = advantages.reduce((a, x) => a + x, 0) / n;
  const variance = advantages.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  const std = Math.sqrt(variance);
  return advantages.map((x) => (x - mean) / (std + 1e-8));
}
