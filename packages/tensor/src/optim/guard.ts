/**
 * The update guard: the bounds a training step must stay within, shared by every relign training loop
 * (SFT, reward model, DPO, every RLHF plugin) through `AdamW.guardedStep`, and by the Trainer's check before it
 * writes a checkpoint.
 *
 * A NaN guard alone is not enough: a learning rate of 1e30 gives a finite step that pushes the weights to
 * ~1e30, and that state, once checkpointed, poisons every resumed run. So a step is also skipped when its
 * update is implausibly large:
 *
 * - `maxUpdateNorm` bounds the global L2 norm of the parameter change ‖Δθ‖ (decay included). An AdamW step
 *   moves each element by about `lr`, so a sane step has ‖Δθ‖ ≈ lr·√N: 39 for lr 1e-3 and 1.5e9 parameters.
 *   The default, 1e4, leaves a wide margin while a run-away step (lr ≥ ~1) is far above it.
 * - `maxWeightAbs` bounds how large the step may make any weight: a step that grows some |w| beyond it is
 *   skipped. Weights already beyond the bound (a loaded model) may stay or shrink. Trained transformers keep
 *   their weights well below 1e2; the default is 1e4.
 *
 * `Infinity` turns a bound off.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Default bound on the global L2 norm of one step's parameter change. */
export const DEFAULT_MAX_UPDATE_NORM = 1e4;
/** Default bound on the magnitude a step may grow any weight to. */
export const DEFAULT_MAX_WEIGHT_ABS = 1e4;

export interface UpdateGuardOptions {
  /** Skip a step whose parameter change has a larger global L2 norm. Default {@link DEFAULT_MAX_UPDATE_NORM}. */
  maxUpdateNorm?: number;
  /** Skip a step that would grow some |weight| beyond this. Default {@link DEFAULT_MAX_WEIGHT_ABS}. */
  maxWeightAbs?: number;
}

/** Why a guarded step was skipped. */
export type SkipReason =
  'non-finite-loss' | 'non-finite-gradient' | 'non-finite-weights' | 'update-norm' | 'weight-magnitude';

/** Checks a bound option: a number > 0 (`Infinity` allowed: no bound). */
export function checkBound(value: number, field: string, fn: string): number {
  if (typeof value !== 'number' || Number.isNaN(value) || !(value > 0)) {
    throw new Error(`${fn}: ${field} must be a number > 0 (Infinity for no bound), got ${String(value)}.`);
  }
  return value;
}

/** The result of {@link checkWeights}. */
export interface WeightCheck {
  ok: boolean;
  /** Largest |w| over all weights (NaN when some weight is NaN). */
  maxAbs: number;
  /** The first weight (in the order given) that is not finite or exceeds the bound. */
  firstBad?: string;
  /** What is wrong with `firstBad`. */
  problem?: 'non-finite' | 'too-large';
}

/**
 * Whether every weight is finite and |w| ≤ `maxAbs`. The reductions run on the device; one small tensor (two
 * numbers per weight) is read back asynchronously.
 */
export async function checkWeights(
  weights: Iterable<[string, tf.Tensor]>,
  maxAbs: number = DEFAULT_MAX_WEIGHT_ABS,
): Promise<WeightCheck> {
  checkBound(maxAbs, 'maxAbs', 'checkWeights');
  const list = [...weights];
  if (list.length === 0) return { ok: true, maxAbs: 0 };
  const stats = tf.tidy(() =>
    tf.stack(
      list.flatMap(([, w]) => [
        tf.cast(tf.all(tf.isFinite(w)), 'float32'),
        w.size === 0 ? tf.scalar(0) : tf.max(tf.abs(w)),
      ]),
    ),
  );
  const values = await stats.data();
  stats.dispose();
  let largest = 0;
  let firstBad: string | undefined;
  let problem: WeightCheck['problem'];
  for (let i = 0; i < list.length; i++) {
    const finite = values[2 * i] === 1;
    const m = values[2 * i + 1]!;
    // Math.max keeps a NaN: one non-finite weight makes the reported maximum NaN.
    largest = finite ? Math.max(largest, m) : NaN;
    if (firstBad === undefined && (!finite || !(m <= maxAbs))) {
      firstBad = list[i]![0];
      problem = finite ? 'too-large' : 'non-finite';
    }
  }
  return firstBad === undefined
    ? { ok: true, maxAbs: largest }
    : { ok: false, maxAbs: largest, firstBad, problem };
}
