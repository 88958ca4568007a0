/** Test-only: a small synthetic run directory (JSON files only, no models) for the report tests. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addHeadToHead } from '../eval/head-to-head.js';
import { writeEvaluation } from '../eval/run-files.js';
import type { EvalResult, Evaluation, SampleRecord } from '../eval/types.js';

export const PROMPTS = ['The food was', 'I loved the', 'Service is', 'This movie'];

function evaluation(name: string, algo: string, step: number, shift: number, kl: number): Evaluation {
  const samples: SampleRecord[] = PROMPTS.map((prompt, i) => ({
    prompt,
    // The last prompt's response carries markup: the report must show it as text.
    response: i === 3 ? ` <script>alert("${name}")</script> & more` : ` response ${i} of ${name}`,
    gold: shift + 0.1 * i,
    judge: shift / 2 + 0.05 * i,
    proxy: 2 * shift + 0.2 * i,
    kl: kl + 0.1 * i,
    length: 5 + i,
    eos: i !== 2,
  }));
  const ms = (v: number[]) => ({ mean: v.reduce((a, b) => a + b, 0) / v.length, std: 0.1 });
  const result: EvalResult = {
    name,
    algo,
    step,
    n: PROMPTS.length,
    gold: ms(samples.map((s) => s.gold)),
    judge: ms(samples.map((s) => s.judge)),
    proxy: ms(samples.map((s) => s.proxy)),
    klToSft: ms(samples.map((s) => s.kl)),
    length: { mean: 6.5 },
    eosRate: 0.75,
    distinct1: 0.6,
    distinct2: 0.9,
    repetition: 0.02,
    winRates: {
      vsSft: { proxy: algo === 'sft' ? 0.5 : 0.5 + shift / 4, judge: algo === 'sft' ? 0.5 : 0.5 + shift / 8 },
    },
    seconds: 3.2,
  };
  return { result, samples };
}

/**
 * Writes a synthetic run: config, stages, SFT and per-algo evaluations (final + two checkpoints each, with
 * head-to-head rates), samples, training metrics, reward-model eval and label stats.
 *
 * @param algos the optimizers present (the config always lists all four built-ins).
 */
export async function writeSyntheticRun(
  dir: string,
  algos: readonly string[] = ['ppo-max', 'dpo', 'p3o-v1', 'p3o-v2'],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ preset: 'tiny', seed: 1, train: { algos: ['ppo-max', 'dpo', 'p3o-v1', 'p3o-v2'] } }),
  );
  await writeFile(
    join(dir, 'stages.json'),
    JSON.stringify([
      { stage: 'sft', status: 'done', seconds: 12.5, startedAt: '2025-01-01T00:00:00Z' },
      { stage: 'train', status: 'done', seconds: 65, previousSeconds: 30 },
      { stage: 'eval', status: 'failed', seconds: 4, error: 'out of <memory>' },
    ]),
  );
  const finals: Evaluation[] = [evaluation('sft', 'sft', 0, 0, 0)];
  await writeEvaluation(dir, finals[0]!);
  algos.forEach((a, k) => finals.push(evaluation(a, a, 20, 0.3 + 0.1 * k, 2 + k)));
  addHeadToHead(finals);
  for (const e of finals.slice(1)) await writeEvaluation(dir, e);
  for (const [k, a] of algos.entries()) {
    for (const step of [5, 10])
      await writeEvaluation(dir, evaluation(`${a}-step-${step}`, a, step, 0.03 * step + 0.05 * k, step / 5));
    const rows = Array.from({ length: 20 }, (_, i) => ({
      'train/step': i + 1,
      'reward/mean': 0.1 * k + 0.03 * i,
      'objective/kl': 0.2 * i,
      'loss/policy': null,
    }));
    await mkdir(join(dir, 'train', a), { recursive: true });
    await writeFile(
      join(dir, 'train', a, 'metrics.jsonl'),
      rows.map((r) => JSON.stringify(r) + '\n').join('') + '{"cut off',
    );
  }
  await mkdir(join(dir, 'reward'), { recursive: true });
  await writeFile(
    join(dir, 'reward', 'eval.json'),
    JSON.stringify({
      heldOutAccuracy: 0.81,
      humanAccuracy: 0.68,
      heldOutPairs: 40,
      humanSentences: 300,
      labelers: {
        gold: { name: 'gold:vader', humanAccuracy: 0.8 },
        judge: { name: 'judge:wink', humanAccuracy: 0.79 },
      },
      loss: 0.45,
    }),
  );
  await mkdir(join(dir, 'labels'), { recursive: true });
  await writeFile(
    join(dir, 'labels', 'stats.json'),
    JSON.stringify({ pairs: 200, agreementWithScores: 0.9 }),
  );
}
