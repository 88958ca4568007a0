/**
 * Learning-rate schedules: pure functions of the optimizer step, so a resumed run recomputes the same rate
 * from the step count alone (nothing to checkpoint).
 */

export interface WarmupCosineOptions {
  /** Peak learning rate, reached at the end of warm-up. */
  peak: number;
  /** Steps of linear warm-up from `peak / warmupSteps` (step 0) to `peak`. 0 disables warm-up. */
  warmupSteps: number;
  /** Total steps; after warm-up the rate follows a half cosine from `peak` down to `min` at `totalSteps`. */
  totalSteps: number;
  /** Floor of the decay. Default 0.1 × peak (nanoGPT's choice). Set `min = peak` for a constant rate. */
  min?: number;
}

/**
 * Linear warm-up then cosine decay (the SFT / reward-model schedule). `step` counts from 0; steps past
 * `totalSteps` keep `min`.
 */
export function warmupCosine(step: number, options: WarmupCosineOptions): number {
  const { peak, warmupSteps, totalSteps } = options;
  const min = options.min ?? 0.1 * peak;
  if (!(peak > 0) || !Number.isFinite(peak)) throw new Error(`warmupCosine: peak must be > 0 (got ${peak}).`);
  if (!(min >= 0) || min > peak) throw new Error(`warmupCosine: min must be in [0, peak] (got ${min}).`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new Error(`warmupCosine: warmupSteps must be an integer >= 0 (got ${warmupSteps}).`);
  }
  if (!Number.isInteger(totalSteps) || totalSteps < warmupSteps) {
    throw new Error(
      `warmupCosine: totalSteps must be an integer >= warmupSteps (got ${totalSteps} < ${warmupSteps}).`,
    );
  }
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  if (step >= totalSteps || totalSteps === warmupSteps) return min;
  const progress = (step - warmupSteps) / (totalSteps - warmupSteps);
  return min + 0.5 * (peak - min) * (1 + Math.cos(Math.PI * progress));
}
