/**
 * Concurrent train stages (`train.parallel`). The `train:<algo>` stages of a run are independent: each reads
 * `sft/` and `reward/` and writes only `train/<algo>/`, seeded by `<seed>/train/<algo>`. On a CPU backend
 * they run in child processes of the same CLI (`relign __train-worker`, ./train-worker.ts), so every part of
 * the work — not only the GEMM that wasm threads speed up — uses the cores, and each stage's files are
 * bit-identical to a run of the stages one after another (apps/reference/test/parallel-train.test.ts).
 *
 * Child processes rather than worker_threads: each has its own heap and tfjs engine, and can be stopped
 * alone. The parent keeps the bookkeeping (stages.json, the ownership marker, the printed output, the stage
 * table); each child's output also goes to `train/<algo>/log.txt`.
 *
 * - How many at once: `train.parallel` — `auto` runs min(#stages, T, memory allows) at once on the wasm and
 *   cpu backends (T = RELIGN_THREADS if set, else the available cores), one at a time on a GPU backend
 *   (webgpu, tensorflow: one device, which its own kernels already fill); a number is taken as asked.
 *   1 is the in-process, one-after-another path.
 * - Threads: each child gets RELIGN_THREADS = max(1, floor(T / concurrent)), so the wasm GEMM threads of
 *   all children together stay within T.
 * - Order: the stage that samples the most responses per prompt first (GRPO's group), a cheap estimate of
 *   the longest, so that it does not start last; otherwise config order.
 * - Failure: the stages already running finish (their results stay, `--resume` skips them), none starts
 *   after it, and the error names each failed stage and its log. Ctrl-C: every child checkpoints and exits
 *   130, then the parent throws InterruptedError (exit 130); `--resume` continues each from its checkpoint.
 * - Optimizers registered only in this process (`registerPlugin`) cannot be found by a child: they run
 *   in-process after the others.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, statSync, type WriteStream } from 'node:fs';
import { availableParallelism, freemem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { resolvePluginConfig, unwrapPluginModule, pluginPackageCandidates } from '@relign/core';
import { wasmRelaxedSimd } from '@relign/tensor';
import type { RelignConfig } from './config/schema.js';
import { InterruptedError, type StageContext } from './context.js';
import { runStage, type PipelineStage } from './pipeline.js';
import { FIRST_PARTY_PLUGINS, pluginFor } from './plugins.js';
import { formatDuration } from './progress.js';
import { TRAIN_WORKER_COMMAND, type FromWorker, type ToWorker } from './train-worker.js';

/** How the train stages of a run are spread over processes. */
export interface TrainParallelPlan {
  /** Stages at a time (1: in-process, one after another). */
  concurrent: number;
  /** RELIGN_THREADS of each child. */
  threadsPerStage: number;
  /** Why, for the log line. */
  why: string;
}

/** Backends whose kernels run on the CPU: concurrent processes use more cores. */
const CPU_BACKENDS = new Set(['wasm', 'cpu']);

/**
 * What `train.parallel` means here (pure, for tests): see the module comment.
 * @param setting 'auto' or a whole number >= 1 (validated with the config).
 * @param stageBytes rough memory of one train stage (0: unknown, no cap).
 */
export function planTrainParallel(o: {
  setting: string;
  stages: number;
  backend: string;
  cores: number;
  /** RELIGN_THREADS, if set. */
  threadsEnv?: string | undefined;
  freeBytes?: number;
  stageBytes?: number;
  /** The config key, for `why`. */
  key?: string;
}): TrainParallelPlan {
  const key = o.key ?? 'train.parallel';
  const env = Number(o.threadsEnv);
  const budget = o.threadsEnv?.trim() && Number.isInteger(env) && env >= 1 ? env : Math.max(1, o.cores);
  const budgetText = o.threadsEnv?.trim() ? `RELIGN_THREADS=${budget}` : `${budget} cores`;
  let concurrent: number;
  let why: string;
  if (o.setting !== 'auto') {
    concurrent = Number(o.setting);
    why = `${key} ${o.setting}`;
  } else if (!CPU_BACKENDS.has(o.backend)) {
    concurrent = 1;
    why = `${key} auto: one device (${o.backend})`;
  } else {
    const byMemory =
      o.stageBytes && o.freeBytes ? Math.max(1, Math.floor(o.freeBytes / o.stageBytes)) : Infinity;
    concurrent = Math.min(budget, byMemory);
    why = `${key} auto: ${budgetText}` + (byMemory < budget ? `, free memory for ${byMemory} at a time` : '');
  }
  concurrent = Math.max(1, Math.min(concurrent, o.stages));
  return { concurrent, threadsPerStage: Math.max(1, Math.floor(budget / concurrent)), why };
}

/** Rough memory of one train stage: the runtime, and the models with gradients, Adam moments and copies. */
function stageBytes(ctx: StageContext): number {
  const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);
  const models =
    size(join(ctx.run.sftDir, 'model.safetensors')) + size(join(ctx.run.rewardDir, 'model.safetensors'));
  return 512 * 2 ** 20 + 12 * models;
}

/** The backend the parent runs on (its children must use the same one for identical results). */
function currentBackend(): string {
  return tf.getBackend();
}

/**
 * Whether a child process finds the same plugin under `algo`: first-party, or an installed package (the
 * object this process resolved is the package's default export), not one only registered here.
 */
async function childCanLoad(algo: string): Promise<boolean> {
  if (Object.hasOwn(FIRST_PARTY_PLUGINS, algo)) return true;
  const plugin = await pluginFor(algo);
  for (const specifier of pluginPackageCandidates(algo)) {
    try {
      if (unwrapPluginModule(await import(/* @vite-ignore */ specifier)) === plugin) return true;
    } catch {
      // not this package
    }
  }
  return false;
}

/** Responses per prompt of `algo` with its settings: more sampling, a longer stage (a cheap estimate). */
async function weight(cfg: RelignConfig, algo: string): Promise<number> {
  try {
    const plugin = await pluginFor(algo);
    return plugin.requirements(resolvePluginConfig(plugin, cfg.algos[algo] ?? {})).responsesPerPrompt;
  } catch {
    return 1;
  }
}

/** The executable a child runs: this package's bin (src/ and dist/ are both one level below the package). */
function binPath(): string {
  const url = (import.meta as { url?: string }).url;
  const here = url ? dirname(fileURLToPath(url)) : typeof __dirname === 'string' ? __dirname : process.cwd();
  return join(here, '..', 'bin', 'relign.mjs');
}

/** A train stage of the pipeline (`train:<algo>`) with its optimizer. */
export interface TrainStageEntry {
  stage: PipelineStage;
  algo: string;
}

/**
 * Runs the train stages `entries` (consecutive `train:<algo>` stages of one pipeline) with the plan of
 * `ctx.cfg.train.parallel`: one after another in this process, or concurrently in child processes.
 */
export async function runTrainStages(ctx: StageContext, entries: readonly TrainStageEntry[]): Promise<void> {
  const pending = entries.filter((e) => !(ctx.resume && ctx.run.isDone(e.stage.name)));
  const inChild: TrainStageEntry[] = [];
  if (ctx.cfg.train.parallel !== '1' && pending.length > 1) {
    for (const e of pending) if (await childCanLoad(e.algo)) inChild.push(e);
  }
  const plan = planTrainParallel({
    setting: ctx.cfg.train.parallel,
    stages: inChild.length,
    backend: currentBackend(),
    cores: availableParallelism(),
    threadsEnv: process.env.RELIGN_THREADS,
    freeBytes: freemem(),
    stageBytes: stageBytes(ctx),
  });
  if (plan.concurrent < 2) {
    for (const e of entries) await runStage(ctx, e.stage);
    return;
  }
  // Stages done before are reported (skipped) first; those a child cannot run come after the group.
  for (const e of entries) if (!pending.includes(e)) await runStage(ctx, e.stage);
  const here = pending.filter((e) => !inChild.includes(e));
  const { concurrent, threadsPerStage: threads } = plan;
  ctx.progress.line(
    `== ${inChild.length} train stages, ${concurrent} at a time in child processes (${plan.why}; ` +
      `RELIGN_THREADS=${threads} each)`,
  );
  // Longest (most responses per prompt) first; a stable sort keeps config order otherwise.
  const weights = new Map<string, number>();
  for (const e of inChild) weights.set(e.algo, await weight(ctx.cfg, e.algo));
  const queue = [...inChild].sort((a, b) => weights.get(b.algo)! - weights.get(a.algo)!);

  const bar = new CombinedBar(ctx, queue.length);
  const failures: { name: string; err: Error }[] = [];
  const interrupted: string[] = [];
  const lane = async () => {
    while (queue.length > 0 && failures.length === 0 && !ctx.signal.aborted) {
      const e = queue.shift()!;
      const stage: PipelineStage = {
        name: e.stage.name,
        parallel: concurrent,
        run: async (c) => {
          // A fresh stage starts clean, as trainStage does in-process (a child leaves the marker alone).
          if (!c.resume) await c.run.removeOwned('train', e.algo);
          await runInChild(c, {
            name: e.algo,
            work: { algo: e.algo },
            threads,
            bar,
            logPath: join(c.run.trainDir(e.algo), 'log.txt'),
          });
        },
      };
      try {
        await runStage(ctx, stage);
      } catch (err) {
        if (err instanceof InterruptedError) {
          interrupted.push(e.algo);
        } else {
          failures.push({ name: e.stage.name, err: err as Error });
          // Said now: the stages still running finish before the run stops with this error.
          bar.line(`   ${e.stage.name} failed: ${(err as Error).message}`);
        }
      }
    }
  };
  try {
    // The whole group is one tracked unit: what the children create is recorded as relign's.
    await ctx.run.track(() => Promise.all(Array.from({ length: concurrent }, lane)));
  } finally {
    bar.done();
    await ctx.run.sortStages(entries.map((e) => e.stage.name));
  }
  if (failures.length > 0) {
    throw new Error(failures.map((f) => `${f.name} failed: ${f.err.message}`).join('; '));
  }
  if (interrupted.length > 0 || ctx.signal.aborted) {
    const err = new InterruptedError(`train ${interrupted.join(', ') || 'stages'}`);
    if (interrupted.length > 1)
      err.message = err.message.replace('its checkpoint is', 'their checkpoints are');
    throw err;
  }
  for (const e of here) await runStage(ctx, e.stage);
  if (here.length > 0) await ctx.run.sortStages(entries.map((e) => e.stage.name));
}

/** One job for a child process. */
export interface ChildJob {
  /** Prefix of its output lines and its name in the combined bar. */
  name: string;
  work: Extract<ToWorker, { type: 'job' }>['work'];
  /** RELIGN_THREADS of the child. */
  threads: number;
  bar: CombinedBar;
  /** Where its whole output goes (appended when resuming); without one, only its error output is kept. */
  logPath?: string;
}

/** Runs a job in a child process (./train-worker.ts); throws like the in-process stage would. */
export async function runInChild(ctx: StageContext, job: ChildJob): Promise<void> {
  const { name, bar, logPath } = job;
  let log: WriteStream | undefined;
  if (logPath) {
    mkdirSync(dirname(logPath), { recursive: true });
    log = createWriteStream(logPath, { flags: ctx.resume ? 'a' : 'w' });
  }
  const child: ChildProcess = fork(binPath(), [TRAIN_WORKER_COMMAND], {
    // The parent's GEMM variant too: with relaxed SIMD (FMA) or without, sums round differently, and a
    // stage must give the same numbers whether it runs here or in a child.
    env: {
      ...process.env,
      RELIGN_THREADS: String(job.threads),
      RELIGN_WASM_RELAXED: wasmRelaxedSimd() ? '1' : '0',
    },
    // A debugger port cannot be shared.
    execArgv: process.execArgv.filter((a) => !a.startsWith('--inspect')),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  if (log) {
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
  } else {
    child.stdout!.resume();
  }
  // The end of its error output, to say why a child that died without reporting did.
  let stderrTail = '';
  child.stderr!.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-4000)));
  let end: FromWorker | undefined;
  const onAbort = () => {
    if (child.connected) child.send({ type: 'abort' } satisfies ToWorker);
  };
  ctx.signal.addEventListener('abort', onAbort);
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  child.on('message', (m: FromWorker) => {
    if (m.type === 'out') {
      log?.write(m.text);
      for (const line of m.text.split('\n').slice(0, -1)) bar.line(`[${name}] ${line}`);
    } else if (m.type === 'step') {
      bar.step(name, m.done, m.total);
    } else {
      end = m;
      if (m.type === 'failed' && m.stack) log?.write(`${m.stack}\n`);
    }
  });
  bar.start(name);
  try {
    child.send({
      type: 'job',
      cfg: { ...ctx.cfg, runDir: ctx.run.root },
      work: job.work,
      resume: ctx.resume,
      backend: currentBackend(),
      tty: ctx.progress.sink.isTTY,
    } satisfies ToWorker);
    if (ctx.signal.aborted) onAbort();
    const { code, signal } = await closed;
    if (end?.type === 'done') return;
    if (end?.type === 'interrupted') {
      throw Object.assign(new InterruptedError(name), { message: end.message });
    }
    const lines = stderrTail.split('\n').filter((l) => l.trim() !== '');
    const cause = lines.find((l) => /Error\b/.test(l)) ?? lines.at(-1);
    const why =
      end?.type === 'failed'
        ? end.message
        : `its process ended (${signal ? `signal ${signal}` : `exit code ${code}`}) before the stage did` +
          (cause ? `: ${cause.trim()}` : '');
    throw new Error(logPath ? `${why} (its output: ${logPath})` : why);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    bar.stop(name);
    if (log) await new Promise<void>((resolve) => log.end(resolve));
  }
}

/** The children's output: their lines prefixed with their name, and on a terminal one bar for all. */
export class CombinedBar {
  /** Per running stage: steps done, of total, and the steps done before this process and since when. */
  private readonly running = new Map<
    string,
    { done: number; total: number; t0: number; start: number; stepped: boolean }
  >();
  private waiting: number;
  private lastDraw = -Infinity;

  constructor(
    private readonly ctx: StageContext,
    stages: number,
    /** First word of the bar. */
    private readonly title = 'train',
  ) {
    this.waiting = stages;
  }

  start(algo: string): void {
    this.waiting--;
    this.running.set(algo, { done: 0, total: 0, t0: performance.now(), start: 0, stepped: false });
  }

  stop(algo: string): void {
    this.running.delete(algo);
    this.draw(true);
  }

  step(algo: string, done: number, total: number): void {
    const r = this.running.get(algo);
    if (!r) return;
    // As ProgressTask: a stage resumed from a checkpoint reports its first step past 1; count from there.
    if (!r.stepped && done - 1 > 0) Object.assign(r, { start: done, t0: performance.now() });
    Object.assign(r, { done, total, stepped: true });
    this.draw(false);
  }

  line(text: string): void {
    this.ctx.progress.line(text);
    this.draw(true);
  }

  done(): void {
    if (this.ctx.progress.sink.isTTY) this.ctx.progress.clear();
  }

  private draw(force: boolean): void {
    const { progress } = this.ctx;
    if (!progress.sink.isTTY) return;
    const now = performance.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const parts = [...this.running].map(([algo, r]) => {
      if (!r.stepped) return `${algo} starting`;
      const doneHere = r.done - r.start;
      const eta = doneHere > 0 ? ((now - r.t0) / 1000 / doneHere) * (r.total - r.done) : undefined;
      return `${algo} ${r.done}/${r.total}${eta !== undefined ? ` ETA ${formatDuration(eta)}` : ''}`;
    });
    if (parts.length === 0) return progress.clear();
    const text = `${this.title}: ${parts.join(' · ')}${this.waiting > 0 ? ` · ${this.waiting} waiting` : ''}`;
    const cols = progress.sink.columns || 120;
    progress.draw(text.length > cols - 1 ? text.slice(0, cols - 2) + '…' : text);
  }
}
