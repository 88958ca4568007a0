/**
 * The child side of concurrent train stages and evaluations (see ./train-parallel.ts, ./eval-parallel.ts):
 * `relign __train-worker`, started by `relign run` (or `relign train`, `relign eval`) with an IPC channel,
 * receives one job (the effective config, `resume`, the backend the parent runs on, and an optimizer to train
 * or policies to evaluate), runs it exactly as the parent would in-process, and reports over IPC: its
 * progress output, each step (for the parent's combined bar) and how it ended. The parent keeps all
 * bookkeeping (stages.json, the run's ownership marker): a worker writes only under `train/<algo>/`, or the
 * `eval/` and `samples/` files of its policies.
 *
 * Ctrl-C (SIGINT, which a terminal sends to the whole process group), an `abort` message or the parent going
 * away stop the run after its current iteration with a checkpoint, as in-process; a second SIGINT quits.
 */
import { initBackend, type BackendName } from '@relign/tensor';
import type { RelignConfig } from './config/schema.js';
import { InterruptedError, type StageContext } from './context.js';
import { Progress, type ProgressTask } from './progress.js';
import { RunDir } from './run-dir.js';
import { evaluateTargets, type EvalTarget } from './stages/eval.js';
import { trainStage } from './stages/train.js';

/** The hidden command that runs a worker (not listed in help). */
export const TRAIN_WORKER_COMMAND = '__train-worker';

/** What the parent sends. */
export type ToWorker =
  | {
      type: 'job';
      cfg: RelignConfig;
      /** The optimizer to train, or the policies to evaluate (the SFT model's evaluation is already written). */
      work: { algo: string } | { evaluate: EvalTarget[] };
      resume: boolean;
      backend: string;
      /** Whether the parent shows redrawn bars (a terminal): progress lines then come without the per-tenth lines. */
      tty: boolean;
    }
  | { type: 'abort' };

/** What a worker sends. */
export type FromWorker =
  | { type: 'out'; text: string }
  | { type: 'step'; done: number; total: number }
  | { type: 'done' }
  | { type: 'interrupted'; message: string }
  | { type: 'failed'; message: string; stack?: string };

/**
 * The run directory as a worker sees it: the parent removed `train/<algo>/` of an earlier run before
 * starting the worker and records what the stage creates, so the worker never touches the ownership marker
 * (two processes rewriting it at once would lose each other's entries).
 */
class WorkerRunDir extends RunDir {
  override async removeOwned(): Promise<void> {}
}

/** Progress that goes to the parent: lines as they are, redrawn bars replaced by `step` messages. */
class RelayProgress extends Progress {
  constructor(send: (m: FromWorker) => void, tty: boolean) {
    super({
      // A redraw or clear of the bar (TTY mode) is left to the parent's combined bar.
      write: (text) => {
        const body = text.replaceAll('\r\x1b[2K', '');
        if (body.includes('\n')) send({ type: 'out', text: body });
      },
      isTTY: tty,
    });
    this.send = send;
  }
  private readonly send: (m: FromWorker) => void;

  override task(label: string, total: number, startAt = 0): ProgressTask {
    const task = super.task(label, total, startAt);
    const update = task.update.bind(task);
    task.update = (done, metrics) => {
      update(done, metrics);
      this.send({ type: 'step', done, total });
    };
    return task;
  }
}

/** Runs one worker; resolves to its exit code (0 done, 1 failed, 130 interrupted, 2 not started by relign). */
export async function runTrainWorker(): Promise<number> {
  if (!process.send) {
    process.stderr.write(
      `relign ${TRAIN_WORKER_COMMAND}: internal command, started by \`relign run\` and \`relign train\`.\n`,
    );
    return 2;
  }
  const channel = process;
  // Messages are sent in order; the last one is awaited before the channel closes.
  const send = (m: FromWorker) =>
    new Promise<void>((resolve) => {
      if (!channel.connected) return resolve();
      channel.send!(m, undefined, {}, () => resolve());
    });
  const controller = new AbortController();
  let presses = 0;
  const onSigint = () => {
    if (++presses > 1) process.exit(130);
    controller.abort();
  };
  const onGone = () => controller.abort();
  process.on('SIGINT', onSigint);
  process.on('disconnect', onGone);
  const job = await new Promise<Extract<ToWorker, { type: 'job' }> | undefined>((resolve) => {
    const onMessage = (m: ToWorker) => {
      if (m.type === 'job') resolve(m);
      else controller.abort();
    };
    process.on('message', onMessage);
    process.once('disconnect', () => resolve(undefined));
  });
  let code = 2;
  if (job && !controller.signal.aborted) {
    code = await runJob(job, controller.signal, (m) => void send(m)).then(async (end) => {
      await send(end);
      return end.type === 'done' ? 0 : end.type === 'interrupted' ? 130 : 1;
    });
  }
  process.off('disconnect', onGone);
  process.off('SIGINT', onSigint);
  if (channel.connected) channel.disconnect();
  return code;
}

async function runJob(
  job: Extract<ToWorker, { type: 'job' }>,
  signal: AbortSignal,
  send: (m: FromWorker) => void,
): Promise<FromWorker> {
  try {
    await initBackend(job.backend as BackendName);
    const ctx: StageContext = {
      cfg: job.cfg,
      run: new WorkerRunDir(job.cfg.runDir),
      progress: new RelayProgress(send, job.tty),
      signal,
      resume: job.resume,
    };
    if ('algo' in job.work) await trainStage(ctx, { algo: job.work.algo });
    else await evaluateTargets(ctx, job.work.evaluate);
    return { type: 'done' };
  } catch (err) {
    if (err instanceof InterruptedError || signal.aborted) {
      return { type: 'interrupted', message: (err as Error).message };
    }
    const e = err as Error;
    return { type: 'failed', message: e?.message ?? String(err), ...(e?.stack ? { stack: e.stack } : {}) };
  }
}
