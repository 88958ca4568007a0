/**
 * The whole pipeline (`relign run`) and the stage runner shared by the single-stage commands: each stage is
 * timed and recorded in `stages.json` ('running' → 'done' | 'interrupted' | 'failed'); with `resume` the
 * stages already done are skipped and an interrupted one continues from its checkpoint.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolvePluginConfig } from '@relign/core';
import type { RelignConfig } from './config/schema.js';
import { ConfigError, validateConfig } from './config/validate.js';
import { InterruptedError, type StageContext } from './context.js';
import { baseModelProblem } from './model-source.js';
import { FIRST_PARTY_PLUGINS, pluginFor } from './plugins.js';
import { formatDuration, Progress } from './progress.js';
import { CONFIG_JSON_FIX, readJson, RunDir, writeJson, type StageRecord } from './run-dir.js';
import { evalStage } from './stages/eval.js';
import { frontierStage } from './stages/frontier.js';
import { labelStage } from './stages/label.js';
import { pretrainStage } from './stages/pretrain.js';
import { reportStage } from './stages/report.js';
import { rewardStage } from './stages/reward.js';
import { sftStage } from './stages/sft.js';
import { trainStage } from './stages/train.js';
import { wallClockSeconds } from './stage-times.js';
import { runTrainStages } from './train-parallel.js';

/** A named stage of the pipeline. */
export interface PipelineStage {
  name: string;
  run: (ctx: StageContext) => Promise<unknown>;
  /** The optimizer of a `train:<algo>` stage (these may run concurrently: ./train-parallel.ts). */
  algo?: string;
  /** How many train stages ran at a time with this one (recorded in stages.json when > 1). */
  parallel?: number;
}

/**
 * The stages of `relign run` for a config: `pretrain` (only with `model.base: pretrain`), `sft`, `label`,
 * `reward`, `train:<algo>` for each of `train.algos`, `eval`, `frontier`, `report`.
 */
export function pipelineStages(cfg: RelignConfig): PipelineStage[] {
  return [
    ...(cfg.model.base === 'pretrain' ? [{ name: 'pretrain', run: pretrainStage }] : []),
    { name: 'sft', run: sftStage },
    { name: 'label', run: labelStage },
    { name: 'reward', run: rewardStage },
    ...cfg.train.algos.map((algo) => ({
      name: `train:${algo}`,
      algo,
      run: (ctx: StageContext) => trainStage(ctx, { algo }),
    })),
    { name: 'eval', run: evalStage },
    { name: 'frontier', run: frontierStage },
    { name: 'report', run: reportStage },
  ];
}

/**
 * Runs one stage: skipped when `ctx.resume` and it is recorded done; otherwise recorded 'running', timed,
 * and recorded 'done', 'interrupted' (Ctrl-C; rethrows {@link InterruptedError}) or 'failed' (rethrows).
 *
 * @returns 'done' or 'skipped'.
 */
export async function runStage(ctx: StageContext, stage: PipelineStage): Promise<'done' | 'skipped'> {
  const { run, progress } = ctx;
  const previous = run.stage(stage.name);
  if (ctx.resume && previous?.status === 'done') {
    progress.line(`== ${stage.name}: done before (${formatDuration(previous.seconds)}), skipped`);
    return 'skipped';
  }
  // Time of earlier attempts of an interrupted stage that this attempt resumes.
  const previousSeconds =
    ctx.resume && previous && previous.status !== 'done'
      ? previous.seconds + (previous.previousSeconds ?? 0)
      : 0;
  const startedAt = new Date().toISOString();
  const base = {
    stage: stage.name,
    startedAt,
    ...(previousSeconds > 0 ? { previousSeconds: Number(previousSeconds.toFixed(2)) } : {}),
    ...((stage.parallel ?? 1) > 1 ? { parallel: stage.parallel } : {}),
  };
  progress.line(`== ${stage.name}${previousSeconds > 0 ? ' (resuming)' : ''}`);
  // Every path the stage creates is recorded as relign's: only those may be removed later.
  const s = await run.track(async () => {
    await run.recordStage({ ...base, status: 'running', seconds: 0 });
    const t0 = performance.now();
    const seconds = () => Number(((performance.now() - t0) / 1000).toFixed(2));
    try {
      await stage.run(ctx);
    } catch (err) {
      const interrupted = err instanceof InterruptedError || ctx.signal.aborted;
      const rec: StageRecord = {
        ...base,
        status: interrupted ? 'interrupted' : 'failed',
        seconds: seconds(),
      };
      if (!interrupted) rec.error = (err as Error)?.message ?? String(err);
      await run.recordStage(rec);
      if (interrupted && !(err instanceof InterruptedError)) throw new InterruptedError(stage.name);
      throw err;
    }
    const took = seconds();
    await run.recordStage({ ...base, status: 'done', seconds: took });
    return took;
  });
  progress.line(`   ${stage.name} took ${formatDuration(s + previousSeconds)}`);
  return 'done';
}

/**
 * Checks, before the first stage, what the stages will need that the config names, so that a typo fails
 * in a second rather than after minutes of earlier stages: every optimizer they train (`train.algos`)
 * resolves to a plugin that accepts its `algos.<name>` settings, and the starting model `model.base` is
 * there. Stage inputs made by earlier stages are checked by each stage itself.
 * @throws ConfigError listing every problem.
 */
export async function checkBeforeStages(
  cfg: RelignConfig,
  stages: readonly PipelineStage[],
  run = new RunDir(cfg.runDir),
): Promise<void> {
  const names = new Set(stages.map((s) => s.name));
  const problems: string[] = [];
  const sweeps = cfg.frontier.klCoefs.length > 0 || cfg.frontier.seeds.length > 0;
  const algos = cfg.train.algos.filter((a) => names.has(`train:${a}`) || (sweeps && names.has('frontier')));
  for (const algo of algos) {
    try {
      resolvePluginConfig(await pluginFor(algo), cfg.algos[algo] ?? {});
    } catch (err) {
      problems.push(`train.algos: '${algo}': ${(err as Error).message}`);
    }
  }
  const base = cfg.model.base;
  if (names.has('sft') && base === 'pretrain' && !names.has('pretrain')) {
    if (!existsSync(join(run.pretrainDir, 'model.safetensors'))) {
      problems.push(
        `model.base is 'pretrain' but ${run.pretrainDir} holds no model: run \`relign pretrain\` first`,
      );
    }
  } else if (names.has('sft') && !['default', 'scratch', 'pretrain'].includes(base)) {
    const problem = baseModelProblem(base); // a model folder or a Hub id (./model-source.ts)
    if (problem) problems.push(problem);
  }
  if (problems.length > 0) throw new ConfigError('config', problems);
}

/** Outputs of a run that a fresh (not resumed) `relign run` removes first, so no stale result survives. */
const RUN_OUTPUTS = [
  'stages.json',
  'sft',
  'labels',
  'reward',
  'train',
  'eval',
  'samples',
  'frontier',
  'report',
];

/**
 * Prepares a run directory: claims it (a non-empty directory that relign did not create needs `force`);
 * a fresh run removes the outputs of an earlier one — only files relign created there, never others; the
 * effective config is written to `config.json`.
 * @throws ForeignRunDirError for a non-empty directory without relign's marker and without `force`.
 */
export async function prepareRunDir(
  cfg: RelignConfig,
  resume: boolean,
  options: { force?: boolean } = {},
): Promise<RunDir> {
  const run = new RunDir(cfg.runDir);
  await run.claim(options);
  if (!resume) {
    for (const entry of RUN_OUTPUTS) await run.removeOwned(entry);
  }
  await run.track(() => writeJson(run.configPath, cfg));
  return run;
}

/** Reads a run's saved `config.json` (validated). */
export function readRunConfig(runDir: string): RelignConfig {
  const run = new RunDir(runDir);
  const raw = readJson<Record<string, unknown>>(run.configPath, undefined, CONFIG_JSON_FIX);
  return validateConfig(raw, FIRST_PARTY_PLUGINS, run.configPath);
}

/** Whether a run directory has a saved config. */
export function hasRunConfig(runDir: string): boolean {
  return existsSync(new RunDir(runDir).configPath);
}

export interface RunPipelineOptions {
  cfg: RelignConfig;
  /** Skip stages done before; continue an interrupted one from its checkpoint. */
  resume?: boolean;
  progress?: Progress;
  signal?: AbortSignal;
  /** Run only these stages (by name, e.g. ['sft', 'label']), in pipeline order. Default: all. */
  only?: readonly string[];
  /** Use a non-empty run directory that relign did not create (it still removes only its own files). */
  force?: boolean;
}

export interface RunPipelineResult {
  run: RunDir;
  /** `stages.json` after the run. */
  stages: StageRecord[];
  /** Seconds of this invocation. */
  seconds: number;
}

/**
 * Runs the pipeline of a config in its run directory (`relign run`). Throws {@link InterruptedError} when
 * the signal stops a stage (its checkpoint is saved; resume with `resume: true`).
 */
export async function runPipeline(options: RunPipelineOptions): Promise<RunPipelineResult> {
  const { cfg } = options;
  const resume = options.resume ?? false;
  const progress = options.progress ?? new Progress();
  const signal = options.signal ?? new AbortController().signal;
  const t0 = performance.now();
  let stages = pipelineStages(cfg);
  if (options.only) {
    const unknown = options.only.filter((n) => !stages.some((s) => s.name === n));
    if (unknown.length > 0) {
      throw new Error(
        `runPipeline: unknown stage ${unknown.join(', ')}; stages: ${stages.map((s) => s.name).join(', ')}`,
      );
    }
    stages = stages.filter((s) => options.only!.includes(s.name));
  }
  // Everything is checked before the run directory is touched.
  await checkBeforeStages(cfg, stages);
  const run = await prepareRunDir(cfg, resume, { force: options.force ?? false });
  const ctx: StageContext = { cfg, run, progress, signal, resume };
  await runStageList(ctx, stages);
  return { run, stages: run.stages(), seconds: (performance.now() - t0) / 1000 };
}

/**
 * Runs stages in order; each run of consecutive `train:<algo>` stages goes to {@link runTrainStages}, which
 * runs them concurrently in child processes where `train.parallel` allows (one after another otherwise).
 */
export async function runStageList(ctx: StageContext, stages: readonly PipelineStage[]): Promise<void> {
  for (let i = 0; i < stages.length;) {
    let j = i;
    while (j < stages.length && stages[j]!.algo !== undefined) j++;
    if (j > i) {
      await runTrainStages(
        ctx,
        stages.slice(i, j).map((stage) => ({ stage, algo: stage.algo! })),
      );
      i = j;
    } else {
      await runStage(ctx, stages[i]!);
      i++;
    }
  }
}

/**
 * The stage-timing table printed at the end of a run. When train stages ran concurrently their rows say
 * so, and the total is the wall-clock time (the stages' times add up to more, which is said too).
 */
export function formatStageTimes(stages: readonly StageRecord[]): string {
  const rows = stages.map((s) => {
    const total = s.seconds + (s.previousSeconds ?? 0);
    const at = (s.parallel ?? 1) > 1 ? `, ${s.parallel} at a time` : '';
    return `  ${s.stage.padEnd(18)} ${formatDuration(total).padStart(7)}  ${s.status}${at}`;
  });
  const sum = stages.reduce((a, s) => a + s.seconds + (s.previousSeconds ?? 0), 0);
  let total = `  ${'total'.padEnd(18)} ${formatDuration(sum).padStart(7)}`;
  if (stages.some((s) => (s.parallel ?? 1) > 1)) {
    total =
      `  ${'total'.padEnd(18)} ${formatDuration(wallClockSeconds(stages)).padStart(7)}  wall clock ` +
      `(the stages' times add up to ${formatDuration(sum)})`;
  }
  return ['stage timings:', ...rows, total].join('\n');
}
