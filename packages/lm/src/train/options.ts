/**
 * Options of the supervised training loop and their checks (one message per mistake, naming the trainer).
 */
import type { StepInfo } from './loop.js';

/** Options of `runSupervisedLoop`; each trainer fills them from its own. */
export interface LoopOptions<E = Record<string, number>> {
  /** Examples per step. */
  batchSize: number;
  /** Peak learning rate of the warm-up + cosine schedule. */
  lr: number;
  /** Linear warm-up steps. Default 0. */
  warmupSteps?: number;
  /** Floor of the cosine decay. Default 0.1 × lr (`lr`: constant after the warm-up). */
  minLr?: number;
  /** AdamW decoupled weight decay (matrices and embeddings only). Default 0.01. */
  weightDecay?: number;
  /** AdamW β1. Default 0.9. */
  beta1?: number;
  /** AdamW β2. Default 0.999. */
  beta2?: number;
  /** Global gradient-norm clip. Default 1.0. */
  maxGradNorm?: number;
  /** Number of steps. One of `maxSteps`, `epochs`, `maxSeconds` is required. */
  maxSteps?: number;
  /** Passes over the training examples (the last batch of an epoch may be smaller). */
  epochs?: number;
  /**
   * Wall-clock budget (seconds) when neither `maxSteps` nor `epochs` is given: after the `warmupSteps`
   * warm-up steps (whose rates do not depend on the total) the step time is measured and the total step
   * count is fixed so the run, evaluations included, fits the budget. The count is in the result and in the
   * checkpoint; rerunning with `maxSteps` set to it reproduces the run exactly. Needs `warmupSteps >= 3`.
   */
  maxSeconds?: number;
  /** Evaluate every this many steps (and always at the end). Default: only at the end. */
  evalEvery?: number;
  /** Directory for resumable checkpoints (see `checkpoint.ts`). */
  checkpointDir?: string;
  /** Save every this many steps (and at the end, and when stopped by `signal`). Default: at the end only. */
  checkpointEvery?: number;
  /** Checkpoints kept in `checkpointDir`. Default 1 (a supervised checkpoint holds no update that the guard let through unchecked). */
  keepCheckpoints?: number;
  /** Continue from the latest checkpoint in `checkpointDir` if there is one (else start fresh). */
  resume?: boolean;
  /** Stops the run after the current step (a checkpoint is written when `checkpointDir` is set). */
  signal?: AbortSignal;
  /** How many recent non-skipped steps the result's `recentMeans` average. Default 10. */
  lossWindow?: number;
  /** Called after every step (after its evaluation, before its checkpoint). */
  onStep?: (info: StepInfo<E>) => void;
}

/** The checked options with their defaults; `totalSteps` is undefined for a time-budget run. */
export interface CheckedLoopOptions {
  batchSize: number;
  lr: number;
  warmupSteps: number;
  minLr: number;
  weightDecay: number;
  maxGradNorm: number;
  lossWindow: number;
  totalSteps: number | undefined;
}

/** Checks `options` for a run over `size` examples. @throws Error `${name}: ...` naming the option and the fix. */
export function checkLoopOptions<E>(name: string, size: number, options: LoopOptions<E>): CheckedLoopOptions {
  const check = (cond: boolean, message: string): void => {
    if (!cond) throw new Error(`${name}: ${message}`);
  };
  const { batchSize, lr, warmupSteps = 0, weightDecay = 0.01, maxGradNorm = 1.0, lossWindow = 10 } = options;
  const minLr = options.minLr ?? 0.1 * lr;
  check(size > 0, 'the training set is empty.');
  check(
    Number.isInteger(batchSize) && batchSize >= 1,
    `batchSize must be an integer >= 1 (got ${batchSize}).`,
  );
  check(lr > 0 && Number.isFinite(lr), `lr must be > 0 (got ${lr}).`);
  check(minLr >= 0 && minLr <= lr, `minLr must be in [0, lr] (got ${minLr}).`);
  check(
    Number.isInteger(warmupSteps) && warmupSteps >= 0,
    `warmupSteps must be an integer >= 0 (got ${warmupSteps}).`,
  );
  check(maxGradNorm > 0, `maxGradNorm must be > 0 (got ${maxGradNorm}).`);
  check(
    Number.isInteger(lossWindow) && lossWindow >= 1,
    `lossWindow must be an integer >= 1 (got ${lossWindow}).`,
  );
  let totalSteps: number | undefined;
  if (options.maxSteps !== undefined) {
    check(
      Number.isInteger(options.maxSteps) && options.maxSteps >= 1,
      `maxSteps must be an integer >= 1 (got ${options.maxSteps}).`,
    );
    totalSteps = options.maxSteps;
  } else if (options.epochs !== undefined) {
    check(
      options.epochs > 0 && Number.isFinite(options.epochs),
      `epochs must be > 0 (got ${options.epochs}).`,
    );
    totalSteps = Math.max(1, Math.ceil(options.epochs * Math.ceil(size / batchSize)));
  } else {
    check(options.maxSeconds !== undefined, 'give maxSteps, epochs or maxSeconds.');
    check(options.maxSeconds! > 0, `maxSeconds must be > 0 (got ${options.maxSeconds}).`);
    check(
      warmupSteps >= 3,
      `maxSeconds needs warmupSteps >= 3 to time steps before fixing the schedule (got ${warmupSteps}).`,
    );
  }
  if (totalSteps !== undefined)
    check(totalSteps >= warmupSteps, `warmupSteps (${warmupSteps}) exceeds the total steps (${totalSteps}).`);
  if (options.evalEvery !== undefined)
    check(
      Number.isInteger(options.evalEvery) && options.evalEvery >= 1,
      'evalEvery must be an integer >= 1.',
    );
  if (options.checkpointEvery !== undefined) {
    check(
      Number.isInteger(options.checkpointEvery) && options.checkpointEvery >= 1,
      'checkpointEvery must be an integer >= 1.',
    );
    check(options.checkpointDir !== undefined, 'checkpointEvery needs checkpointDir.');
  }
  if (options.keepCheckpoints !== undefined)
    check(
      Number.isInteger(options.keepCheckpoints) && options.keepCheckpoints >= 1,
      `keepCheckpoints must be an integer >= 1 (got ${options.keepCheckpoints}).`,
    );
  check(!options.resume || options.checkpointDir !== undefined, 'resume needs checkpointDir.');
  return { batchSize, lr, warmupSteps, minLr, weightDecay, maxGradNorm, lossWindow, totalSteps };
}
