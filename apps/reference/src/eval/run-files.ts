/**
 * Evaluation files of a run directory: `eval/<name>.json` ({@link EvalResult}) and
 * `samples/<name>.jsonl` ({@link SampleRecord} per line), layout in apps/reference/README.md.
 */
import { readdir, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@relign/tensor';
import type { EvalResult, Evaluation, SampleRecord } from './types.js';

export const EVAL_DIR = 'eval';
export const SAMPLES_DIR = 'samples';

/** Paths of one evaluation's files. */
export function evaluationPaths(runDir: string, name: string): { result: string; samples: string } {
  return {
    result: join(runDir, EVAL_DIR, `${name}.json`),
    samples: join(runDir, SAMPLES_DIR, `${name}.jsonl`),
  };
}

/**
 * Writes `eval/<name>.json` and `samples/<name>.jsonl` (atomically: a reader never sees half a file).
 * @returns the two paths.
 */
export async function writeEvaluation(
  runDir: string,
  evaluation: Evaluation,
): Promise<{ result: string; samples: string }> {
  const paths = evaluationPaths(runDir, evaluation.result.name);
  await mkdir(join(runDir, EVAL_DIR), { recursive: true });
  await mkdir(join(runDir, SAMPLES_DIR), { recursive: true });
  await writeFileAtomic(paths.samples, evaluation.samples.map((s) => JSON.stringify(s) + '\n').join(''));
  await writeFileAtomic(paths.result, JSON.stringify(evaluation.result, null, 2) + '\n');
  return paths;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isMeanStd(v: unknown): boolean {
  return isRecord(v) && typeof v['mean'] === 'number';
}

/**
 * Checks the fields the frontier and the report read; other fields are passed through.
 * @throws Error naming the file and the field.
 */
export function checkEvalResult(v: unknown, file: string): EvalResult {
  if (!isRecord(v)) throw new Error(`${file}: expected an EvalResult object.`);
  if (typeof v['name'] !== 'string') throw new Error(`${file}: field "name" must be a string.`);
  if (typeof v['algo'] !== 'string') throw new Error(`${file}: field "algo" must be a string.`);
  if (typeof v['step'] !== 'number') throw new Error(`${file}: field "step" must be a number.`);
  for (const key of ['gold', 'judge', 'proxy', 'klToSft']) {
    if (!isMeanStd(v[key])) throw new Error(`${file}: field "${key}" must be {mean, std}.`);
  }
  return v as unknown as EvalResult;
}

/**
 * Reads every `eval/*.json` of a run, sorted by name. A run without evaluations gives `[]`.
 * @throws Error naming a file that is not valid JSON or lacks a field.
 */
export async function readEvalResults(runDir: string): Promise<EvalResult[]> {
  const dir = join(runDir, EVAL_DIR);
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
  const out: EvalResult[] = [];
  for (const f of files) {
    const path = join(dir, f);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (err) {
      throw new Error(`${path}: not valid JSON (${(err as Error).message}).`);
    }
    out.push(checkEvalResult(parsed, path));
  }
  return out;
}

/**
 * Reads `samples/<name>.jsonl`; `undefined` when the file does not exist.
 * @throws Error naming the file and line of a malformed record.
 */
export async function readSamples(runDir: string, name: string): Promise<SampleRecord[] | undefined> {
  const path = evaluationPaths(runDir, name).samples;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const out: SampleRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (err) {
      throw new Error(`${path}:${i + 1}: not valid JSON (${(err as Error).message}).`);
    }
    if (!isRecord(rec) || typeof rec['prompt'] !== 'string' || typeof rec['response'] !== 'string') {
      throw new Error(`${path}:${i + 1}: expected {prompt, response, gold, judge, proxy}.`);
    }
    out.push(rec as unknown as SampleRecord);
  });
  return out;
}
