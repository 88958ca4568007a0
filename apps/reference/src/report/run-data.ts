/**
 * Everything the report reads from a run directory (layout: apps/reference/README.md), loaded leniently:
 * a missing file is simply absent, and a file that exists but cannot be read is listed in `problems`
 * instead of failing the whole report.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonl } from '@relign/lm';
import { checkEvalResult, EVAL_DIR } from '../eval/run-files.js';
import { FRONTIER_FILE, type FrontierPoint } from '../eval/frontier.js';
import type { EvalResult, SampleRecord } from '../eval/types.js';

/** One entry of `stages.json`. */
export interface StageRecord {
  stage: string;
  status: string;
  /** Seconds of the last attempt. */
  seconds?: number;
  /** Seconds of earlier, interrupted attempts (a resumed stage). */
  previousSeconds?: number;
  startedAt?: string;
  /** Error message of a failed attempt. */
  error?: string;
  /** Train stages that ran at a time with this one (`train.parallel`), when more than one. */
  parallel?: number;
}

/** The rows of `train/<algo>/metrics.jsonl` (metric name → value; `null` for a non-finite value). */
export interface TrainingCurve {
  algo: string;
  rows: Record<string, unknown>[];
}

export interface RunData {
  runDir: string;
  /** `config.json`. */
  config?: Record<string, unknown>;
  /** `stages.json`. */
  stages?: StageRecord[];
  /** `eval/*.json`, sorted by name. */
  evals: EvalResult[];
  /** `frontier/frontier.json` points (used when there are no `eval/*.json`). */
  frontierFile?: FrontierPoint[];
  /** `train/<algo>/metrics.jsonl`, sorted by algo. */
  training: TrainingCurve[];
  /** `reward/eval.json`. */
  rewardEval?: Record<string, unknown>;
  /** `labels/stats.json`. */
  labelStats?: Record<string, unknown>;
  /** `samples/<name>.jsonl` of the final evaluations (not `-step-N` ones), by name. */
  samples: Map<string, SampleRecord[]>;
  /** Files that exist but could not be read, with the reason. */
  problems: string[];
}

type Read<T> = { ok: true; value: T } | { ok: false; missing: boolean; error?: string };

async function readText(path: string): Promise<Read<string>> {
  try {
    return { ok: true, value: await readFile(path, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, missing: code === 'ENOENT' || code === 'ENOTDIR', error: (err as Error).message };
  }
}

async function readJson(path: string, problems: string[]): Promise<unknown> {
  const r = await readText(path);
  if (!r.ok) {
    if (!r.missing) problems.push(`${path}: ${r.error ?? 'unreadable'}`);
    return undefined;
  }
  try {
    return JSON.parse(r.value);
  } catch (err) {
    problems.push(`${path}: not valid JSON (${(err as Error).message})`);
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

async function readRunJsonl(
  path: string,
  problems: string[],
): Promise<Record<string, unknown>[] | undefined> {
  const rows: Record<string, unknown>[] = [];
  let bad = 0;
  try {
    // A line cut by an interrupted write is skipped; the rest is kept.
    for await (const { value } of readJsonl(path, { onInvalid: () => void bad++ })) rows.push(value);
  } catch (err) {
    const cause = (err as Error).cause as NodeJS.ErrnoException | undefined;
    if (cause?.code !== 'ENOENT' && cause?.code !== 'ENOTDIR')
      problems.push(`${path}: ${(cause ?? (err as Error)).message}`);
    return undefined;
  }
  if (bad > 0) problems.push(`${path}: ${bad} malformed line(s) skipped`);
  return rows;
}

async function listDir(path: string): Promise<string[]> {
  return (await readdir(path, { withFileTypes: true }).catch(() => [])).map((d) => d.name).sort();
}

function stagesOf(v: unknown, path: string, problems: string[]): StageRecord[] | undefined {
  const list = Array.isArray(v) ? v : isRecord(v) && Array.isArray(v['stages']) ? v['stages'] : undefined;
  if (list === undefined) {
    if (v !== undefined) problems.push(`${path}: expected an array of {stage, status, seconds}`);
    return undefined;
  }
  return list.filter(isRecord).map((s) => ({
    stage: String(s['stage'] ?? '?'),
    status: String(s['status'] ?? '?'),
    ...(typeof s['seconds'] === 'number' ? { seconds: s['seconds'] } : {}),
    ...(typeof s['previousSeconds'] === 'number' ? { previousSeconds: s['previousSeconds'] } : {}),
    ...(typeof s['startedAt'] === 'string' ? { startedAt: s['startedAt'] } : {}),
    ...(typeof s['error'] === 'string' ? { error: s['error'] } : {}),
    ...(typeof s['parallel'] === 'number' ? { parallel: s['parallel'] } : {}),
  }));
}

/** Loads a run directory for the report. Never throws for missing or malformed files (see `problems`). */
export async function loadRunData(runDir: string): Promise<RunData> {
  const problems: string[] = [];
  const data: RunData = { runDir, evals: [], training: [], samples: new Map(), problems };

  const config = await readJson(join(runDir, 'config.json'), problems);
  if (isRecord(config)) data.config = config;
  const stagesPath = join(runDir, 'stages.json');
  const stages = stagesOf(await readJson(stagesPath, problems), stagesPath, problems);
  if (stages) data.stages = stages;

  for (const f of (await listDir(join(runDir, EVAL_DIR))).filter((n) => n.endsWith('.json'))) {
    const path = join(runDir, EVAL_DIR, f);
    const v = await readJson(path, problems);
    if (v === undefined) continue;
    try {
      data.evals.push(checkEvalResult(v, path));
    } catch (err) {
      problems.push((err as Error).message);
    }
  }

  const frontierPath = join(runDir, FRONTIER_FILE);
  const frontier = await readJson(frontierPath, problems);
  if (isRecord(frontier) && Array.isArray(frontier['points'])) {
    data.frontierFile = frontier['points'].filter(
      (p): p is FrontierPoint => isRecord(p) && typeof p['algo'] === 'string' && typeof p['kl'] === 'number',
    );
  } else if (frontier !== undefined) {
    problems.push(`${frontierPath}: expected {points: [...]}`);
  }

  for (const algo of await listDir(join(runDir, 'train'))) {
    const rows = await readRunJsonl(join(runDir, 'train', algo, 'metrics.jsonl'), problems);
    if (rows !== undefined) data.training.push({ algo, rows });
  }

  const rewardEval = await readJson(join(runDir, 'reward', 'eval.json'), problems);
  if (isRecord(rewardEval)) data.rewardEval = rewardEval;
  const labelStats = await readJson(join(runDir, 'labels', 'stats.json'), problems);
  if (isRecord(labelStats)) data.labelStats = labelStats;

  for (const r of data.evals) {
    if (/-step-\d+$/.test(r.name)) continue;
    const rows = await readRunJsonl(join(runDir, 'samples', `${r.name}.jsonl`), problems);
    if (rows !== undefined) data.samples.set(r.name, rows as unknown as SampleRecord[]);
  }
  return data;
}
