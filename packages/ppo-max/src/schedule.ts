/**
 * The learning-rate schedule of MOSS-RLHF's PPO trainer (docs/algorithms.md §2.9): linear warm-up with a floor of 0.1, then
 * inverse-square-root decay. A pure function of the optimizer step, so a resumed run needs nothing extra.
 */

/**
 * The factor multiplying the peak learning rate at optimizer step `step` (0-based: the number of steps already
 * taken) with `warmupSteps = W`:
 *
 *     W = 0:       1 (constant rate)
 *     step < W:    max(step / W, 0.1)
 *     step ≥ W:    sqrt(W / step)
 *
 * MOSS uses W = 500 by default and 100 in its released scripts; the paper warms up over 10% of the steps
 * (docs/algorithms.md §2.9). The caller floors the resulting rate (MOSS: 1e-8).
 *
 * @throws Error for a negative or non-integer step or W.
 */
export function mossLrFactor(step: number, warmupSteps: number): number {
  if (!Number.isInteger(step) || step < 0)
    throw new Error(`mossLrFactor: step must be an integer >= 0, got ${step}.`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new Error(
      `mossLrFactor: warmupSteps must be an integer >= 0 (0 = constant rate), got ${warmupSteps}.`,
    );
  }
  if (warmupSteps === 0) return 1;
  if (step < warmupSteps) return Math.max(step / warmupSteps, 0.1);
  return Math.sqrt(warmupSteps / step);
}

/** The learning rate at `step`: `max(peak · mossLrFactor(step, W), 1e-8)` (MOSS's floor, never above `peak`), or `peak` when W = 0. */
export function mossLearningRate(peak: number, step: number, warmupSteps: number): number {
  if (warmupSteps === 0) return peak;
  return Math.max(peak * mossLrFactor(step, warmupSteps), Math.min(peak, 1e-8));
}
