/**
 * Head-to-head win rates between evaluated models (docs/algorithms.md §1.11 [CHOICE]: one sample per prompt per model,
 * same prompts, ties ½), by the proxy reward and by the judge.
 */
import { writeFileAtomic } from '@relign/tensor';
import { evaluationPaths, readEvalResults, readSamples } from './run-files.js';
import type { EvalResult, Evaluation, SampleRecord, WinRate } from './types.js';
import { winRate } from './win-rate.js';

function checkSamePrompts(a: Evaluation, b: Evaluation): void {
  const x = a.samples;
  const y = b.samples;
  if (x.length !== y.length) {
    throw new Error(
      `addHeadToHead: "${a.result.name}" has ${x.length} samples and "${b.result.name}" has ${y.length}; ` +
        'head-to-head compares responses to the same prompts.',
    );
  }
  x.forEach((s, i) => {
    if (s.prompt !== y[i]!.prompt) {
      throw new Error(
        `addHeadToHead: prompt ${i} of "${a.result.name}" (${JSON.stringify(s.prompt)}) differs from ` +
          `"${b.result.name}"'s (${JSON.stringify(y[i]!.prompt)}); evaluate every model on the same prompts.`,
      );
    }
  });
}

function rate(a: readonly SampleRecord[], b: readonly SampleRecord[]): WinRate {
  return {
    proxy: winRate(
      a.map((s) => s.proxy),
      b.map((s) => s.proxy),
    ),
    judge: winRate(
      a.map((s) => s.judge),
      b.map((s) => s.judge),
    ),
  };
}

/**
 * Fills `result.winRates.headToHead[other]` of every evaluation with its win rate against every other one
 * (`rate(A, B) + rate(B, A) = 1`). Modifies the results in place and returns them.
 *
 * @throws Error when two evaluations did not answer the same prompts in the same order, or names repeat.
 */
export function addHeadToHead(evaluations: readonly Evaluation[]): EvalResult[] {
  const names = new Set<string>();
  for (const e of evaluations) {
    if (names.has(e.result.name))
      throw new Error(`addHeadToHead: evaluation "${e.result.name}" appears twice.`);
    names.add(e.result.name);
  }
  for (const a of evaluations) {
    const h2h: Record<string, WinRate> = {};
    for (const b of evaluations) {
      if (a === b) continue;
      checkSamePrompts(a, b);
      h2h[b.result.name] = rate(a.samples, b.samples);
    }
    a.result.winRates = { ...a.result.winRates, headToHead: h2h };
  }
  return evaluations.map((e) => e.result);
}

/**
 * Head-to-head for a run directory: reads `eval/*.json` and their `samples/*.jsonl`, fills
 * `winRates.headToHead` among the selected evaluations and writes the JSON files back.
 *
 * @param names the evaluations to compare; default every final one (`sft` and `<algo>`, not
 *   `<algo>-step-<N>` checkpoints) that has samples.
 * @returns the updated results.
 * @throws Error when a named evaluation or its samples are missing, or prompts differ.
 */
export async function updateHeadToHead(runDir: string, names?: readonly string[]): Promise<EvalResult[]> {
  const all = await readEvalResults(runDir);
  const chosen =
    names === undefined
      ? all.filter((r) => !/-step-\d+$/.test(r.name))
      : names.map((n) => {
          const r = all.find((x) => x.name === n);
          if (r === undefined)
            throw new Error(`updateHeadToHead: ${evaluationPaths(runDir, n).result} does not exist.`);
          return r;
        });
  const evaluations: Evaluation[] = [];
  for (const result of chosen) {
    const samples = await readSamples(runDir, result.name);
    if (samples === undefined) {
      if (names !== undefined) {
        throw new Error(`updateHeadToHead: ${evaluationPaths(runDir, result.name).samples} does not exist.`);
      }
      continue;
    }
    evaluations.push({ result, samples });
  }
  const results = addHeadToHead(evaluations);
  for (const r of results) {
    await writeFileAtomic(evaluationPaths(runDir, r.name).result, JSON.stringify(r, null, 2) + '\n');
  }
  return results;
}
