/**
 * What every stage receives: the validated config, the run directory, progress output, the abort signal
 * (Ctrl-C) and whether to resume.
 */
import type { RelignConfig } from './config/schema.js';
import type { Progress } from './progress.js';
import type { RunDir } from './run-dir.js';

export interface StageContext {
  cfg: RelignConfig;
  run: RunDir;
  progress: Progress;
  /** Aborted by Ctrl-C: stages checkpoint and throw {@link InterruptedError}. */
  signal: AbortSignal;
  /** Continue from checkpoints / skip finished work instead of starting over. */
  resume: boolean;
}

/** A stage stopped by the abort signal after writing its checkpoint. */
export class InterruptedError extends Error {
  constructor(
    readonly stage: string,
    detail = '',
  ) {
    super(`${stage} interrupted${detail ? ` (${detail})` : ''}; its checkpoint is saved.`);
    this.name = 'InterruptedError';
  }
}

/** Throws {@link InterruptedError} when the signal has fired. */
export function checkAborted(ctx: StageContext, stage: string): void {
  if (ctx.signal.aborted) throw new InterruptedError(stage);
}
