/**
 * The KL–reward frontier (docs/algorithms.md §1.11, the P3O paper's main plot): one point per evaluated checkpoint,
 * x = KL to SFT per sequence, y = mean reward (proxy; here also gold and judge), one series per optimizer.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@relign/tensor';
import { readEvalResults } from './run-files.js';
import type { EvalResult } from './types.js';

/** One evaluated checkpoint on the frontier. */
export interface FrontierPoint {
  /** The evaluation's name (`eval/<name>.json`). */
  name: string;
  /** The series: the optimizer, or `'sft'`. */
  algo: string;
  step: number;
  klCoef?: number;
  seed?: number | string;
  /** Mean k1 KL to SFT per sequence. */
  kl: number;
  /** Standard deviation of the per-sample KL. */
  klStd: number;
  /** Mean proxy reward. */
  proxy: number;
  /** Mean gold score. */
  gold: number;
  /** Mean judge score. */
  judge: number;
}

/** `<runDir>/frontier/frontier.json`. */
export interface Frontier {
  points: FrontierPoint[];
}

export const FRONTIER_FILE = join('frontier', 'frontier.json');

/** Frontier points of evaluation results, ordered by algo (SFT first), then step, then name. */
export function frontierPoints(results: readonly EvalResult[]): FrontierPoint[] {
  const points = results.map((r): FrontierPoint => ({
    name: r.name,
    algo: r.algo,
    step: r.step,
    ...(r.klCoef !== undefined ? { klCoef: r.klCoef } : {}),
    ...(r.seed !== undefined ? { seed: r.seed } : {}),
    kl: r.klToSft.mean,
    klStd: r.klToSft.std,
    proxy: r.proxy.mean,
    gold: r.gold.mean,
    judge: r.judge.mean,
  }));
  const rank = (a: string): number => (a === 'sft' ? 0 : 1);
  return points.sort(
    (a, b) =>
      rank(a.algo) - rank(b.algo) ||
      a.algo.localeCompare(b.algo) ||
      a.step - b.step ||
      a.name.localeCompare(b.name),
  );
}

/**
 * The upper envelope of a set of points: those no other point beats with at most the same KL, i.e. the
 * best reward reachable at each KL budget. Sorted by KL ascending; ties in KL keep the higher reward.
 *
 * @param key the reward to maximise.
 */
export function paretoFront<P extends { kl: number }>(points: readonly P[], y: (p: P) => number): P[] {
  const sorted = [...points].sort((a, b) => a.kl - b.kl || y(b) - y(a));
  const out: P[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    if (y(p) > best) {
      out.push(p);
      best = y(p);
    }
  }
  return out;
}

/**
 * Collects the frontier of a run from its `eval/*.json` and writes `frontier/frontier.json`.
 * @returns the frontier (empty `points` for a run without evaluations).
 */
export async function computeFrontier(runDir: string): Promise<Frontier> {
  const frontier: Frontier = { points: frontierPoints(await readEvalResults(runDir)) };
  await mkdir(join(runDir, 'frontier'), { recursive: true });
  await writeFileAtomic(join(runDir, FRONTIER_FILE), JSON.stringify(frontier, null, 2) + '\n');
  return frontier;
}
