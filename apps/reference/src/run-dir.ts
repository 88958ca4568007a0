/**
 * The run directory: where each stage reads and writes (layout documented in the README), and
 * `stages.json`, the record of each stage's status and time that `--resume` reads.
 *
 * ```
 * <runDir>/config.json            effective config (validated, defaults filled)
 * <runDir>/stages.json            [{stage, status, seconds, startedAt, parallel?}]; resume skips 'done' stages
 * <runDir>/pretrain/              (model.base: pretrain) model + tokenizer + training.json + metrics.jsonl
 * <runDir>/sft/                   SFT model dir (model + tokenizer) + metrics.jsonl + result.json + checkpoints/
 * <runDir>/labels/pairs.jsonl     {prompt, chosen, rejected} (TRL format) + labels/stats.json
 * <runDir>/reward/                reward model dir + metrics.jsonl + eval.json + checkpoints/
 * <runDir>/train/<run>/           metrics.jsonl, checkpoints/, final/, evalpoints/step-<N>/, result.json,
 *                                 log.txt (the output of a stage run in a child process: train-parallel.ts)
 * <runDir>/eval/<name>.json       evaluation results, name = 'sft' | '<run>' | '<run>-step-<N>'
 * <runDir>/samples/<name>.jsonl   {prompt, response, gold, judge, proxy}
 * <runDir>/frontier/frontier.json KL-reward frontier points
 * <runDir>/report/report.html     the self-contained report
 * <runDir>/.relign-run.json       relign's marker: the paths it created here (the only ones it deletes)
 * ```
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '@relign/tensor';
import { RunOwnership } from './run-ownership.js';

export type StageStatus = 'done' | 'running' | 'failed' | 'interrupted';

/** One entry of `stages.json`. */
export interface StageRecord {
  stage: string;
  status: StageStatus;
  /** Wall-clock seconds of the last attempt (over all attempts for a resumed stage: see `attempts`). */
  seconds: number;
  /** ISO time the last attempt started. */
  startedAt: string;
  /** Seconds of earlier, interrupted attempts (the total is seconds + previousSeconds). */
  previousSeconds?: number;
  /** Error message of a failed attempt. */
  error?: string;
  /** Train stages that ran at a time with this one, when more than one (`train.parallel`). */
  parallel?: number;
}

/** Paths of a run directory. */
export class RunDir {
  readonly root: string;
  private ownership: RunOwnership | undefined;
  /** Writes of stages.json, one after another (concurrent stages must not lose each other's record). */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(root: string) {
    this.root = resolve(root);
  }

  /**
   * Opens the directory for writing (see run-ownership.ts): creates it with relign's marker, or reopens
   * one that has the marker; a non-empty directory without it needs `force`.
   * @throws ForeignRunDirError otherwise.
   */
  async claim(options: { force?: boolean } = {}): Promise<void> {
    this.ownership = await RunOwnership.claim(this.root, options);
  }

  /** Runs `work`, recording the paths it creates as relign's (nothing is recorded before {@link claim}). */
  track<T>(work: () => Promise<T>): Promise<T> {
    return this.ownership ? this.ownership.track(work) : work();
  }

  /**
   * Removes what relign created at `parts` (a file or folder of the run): never a file it did not create.
   * In a directory without relign's marker nothing is removed.
   */
  async removeOwned(...parts: string[]): Promise<void> {
    this.ownership ??= await RunOwnership.open(this.root);
    await this.ownership?.remove(parts.join('/'));
  }

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  get configPath(): string {
    return this.path('config.json');
  }
  get stagesPath(): string {
    return this.path('stages.json');
  }
  get pretrainDir(): string {
    return this.path('pretrain');
  }
  get sftDir(): string {
    return this.path('sft');
  }
  get labelsDir(): string {
    return this.path('labels');
  }
  get pairsPath(): string {
    return this.path('labels', 'pairs.jsonl');
  }
  get rewardDir(): string {
    return this.path('reward');
  }
  trainDir(run: string): string {
    return this.path('train', run);
  }
  evalPath(name: string): string {
    return this.path('eval', `${name}.json`);
  }
  samplesPath(name: string): string {
    return this.path('samples', `${name}.jsonl`);
  }
  get frontierPath(): string {
    return this.path('frontier', 'frontier.json');
  }
  get reportPath(): string {
    return this.path('report', 'report.html');
  }

  ensure(...parts: string[]): string {
    const p = this.path(...parts);
    mkdirSync(p, { recursive: true });
    return p;
  }

  /** The stage records (empty for a new run). */
  stages(): StageRecord[] {
    if (!existsSync(this.stagesPath)) return [];
    try {
      const v = JSON.parse(readFileSync(this.stagesPath, 'utf8')) as unknown;
      return Array.isArray(v) ? (v as StageRecord[]) : [];
    } catch (err) {
      throw new Error(`${this.stagesPath} is not valid JSON (${(err as Error).message}); fix or delete it.`);
    }
  }

  stage(name: string): StageRecord | undefined {
    return this.stages().find((s) => s.stage === name);
  }

  isDone(name: string): boolean {
    return this.stage(name)?.status === 'done';
  }

  /** Inserts or replaces the record of `rec.stage` (atomic write). */
  recordStage(rec: StageRecord): Promise<void> {
    return this.serial(async () => {
      const all = this.stages();
      const i = all.findIndex((s) => s.stage === rec.stage);
      if (i >= 0) all[i] = rec;
      else all.push(rec);
      mkdirSync(this.root, { recursive: true });
      await writeFileAtomic(this.stagesPath, JSON.stringify(all, null, 2) + '\n');
    });
  }

  /**
   * Puts the records of the stages named in `order` in that order, at the place of the first of them (stages
   * that ran concurrently were recorded as they started).
   */
  sortStages(order: readonly string[]): Promise<void> {
    return this.serial(async () => {
      const all = this.stages();
      const rank = (s: StageRecord) => order.indexOf(s.stage);
      const listed = all.filter((s) => rank(s) >= 0).sort((a, b) => rank(a) - rank(b));
      const at = all.findIndex((s) => rank(s) >= 0);
      if (at < 0) return;
      const others = all.filter((s) => rank(s) < 0);
      const sorted = [...others.slice(0, at), ...listed, ...others.slice(at)];
      if (sorted.every((s, i) => s === all[i])) return;
      await writeFileAtomic(this.stagesPath, JSON.stringify(sorted, null, 2) + '\n');
    });
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.writes.then(work, work);
    this.writes = next.catch(() => undefined);
    return next;
  }

  /** Forgets a stage (so that a later `run --resume` redoes it). */
  async clearStage(name: string): Promise<void> {
    const all = this.stages().filter((s) => s.stage !== name);
    if (existsSync(this.stagesPath))
      await writeFileAtomic(this.stagesPath, JSON.stringify(all, null, 2) + '\n');
  }
}

/** Writes JSON atomically, creating the directory. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  mkdirSync(join(path, '..'), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Reads JSON, with errors naming the file: a missing one names the stage that makes it, one that does not
 * parse says how to fix it (`fix`, default: rerun that stage, or fix or delete the file).
 */
export function readJson<T>(path: string, madeBy?: string, fix?: string): T {
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing${madeBy ? `: run \`relign ${madeBy}\` first (or \`relign run\`)` : ''}.`,
    );
  }
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    const how = fix ?? (madeBy ? `run \`relign ${madeBy}\` again to rewrite it` : 'fix or delete it');
    throw new Error(`${path} is not valid JSON (${(err as Error).message}): ${how}.`);
  }
}

/** How to repair a run's `config.json` that does not parse (for {@link readJson}). */
export const CONFIG_JSON_FIX =
  'restore it, or pass --preset/--config (and your flags) to a single-stage command such as `relign eval`, ' +
  'which then writes a new config.json';
