/**
 * `relign eval`: evaluates the SFT model and every trained policy (final and, with `eval.checkpoints`, each
 * snapshot in `evalpoints/`) on the same held-out prompts with the same sampling seed: gold (VADER; task
 * arithmetic: accuracy), judge (wink; arithmetic: the leading number), proxy reward (the reward model;
 * arithmetic: the checkable reward RL optimised), KL to SFT, length, EOS rate, collapse signs and win rates (`evaluatePolicy` of
 * `src/eval`), then head-to-head win rates among the final policies. Writes `eval/<name>.json` and
 * `samples/<name>.jsonl`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CausalLM } from '@relign/lm';
import type { RewardFunction } from '@relign/reward-model';
import { tokenizerStopOptions } from '@relign/rollout';
import {
  evaluatePolicy,
  readSamples,
  taskLabelers,
  updateHeadToHead,
  writeEvaluation,
  type SampleRecord,
} from '../eval/index.js';
import { checkAborted, type StageContext } from '../context.js';
import { evaluateConcurrently } from '../eval-parallel.js';
import { readJson } from '../run-dir.js';
import { promptRecords } from '../task/data.js';
import { loadModelDir } from '../task/models.js';
import { loadRewardModel, loadSft, taskData } from './shared.js';
import { trainRunDone, type TrainRunResult } from './train.js';

/** One policy to evaluate. */
export interface EvalTarget {
  name: string;
  algo: string;
  step: number;
  /** Model directory; undefined for the SFT model itself. */
  dir?: string;
  klCoef?: number;
  seed?: number;
}

/** The evaluation targets of finished training runs: snapshots (when asked) and the final policy. */
export function evalTargets(ctx: StageContext, runs: readonly string[]): EvalTarget[] {
  const out: EvalTarget[] = [];
  for (const name of runs) {
    const dir = ctx.run.trainDir(name);
    const r = readJson<TrainRunResult>(join(dir, 'result.json'), `train --algo ${name}`);
    if (ctx.cfg.eval.checkpoints) {
      for (const step of r.evalpoints) {
        const snap = join(dir, 'evalpoints', `step-${step}`);
        if (existsSync(join(snap, 'model.safetensors'))) {
          out.push({
            name: `${name}-step-${step}`,
            algo: r.algo,
            step,
            dir: snap,
            klCoef: r.klCoef,
            seed: r.seed,
          });
        }
      }
    }
    out.push({
      name,
      algo: r.algo,
      step: r.iterations,
      dir: join(dir, 'final'),
      klCoef: r.klCoef,
      seed: r.seed,
    });
  }
  return out;
}

/**
 * Evaluates the SFT model (the win-rate baseline; an existing evaluation is reused unless `reevaluateSft`)
 * and the given targets; skips targets already evaluated when resuming. Returns the names evaluated now.
 */
export async function evaluateTargets(
  ctx: StageContext,
  targets: readonly EvalTarget[],
  options: { reevaluateSft?: boolean } = {},
): Promise<string[]> {
  const { cfg, run } = ctx;
  const data = await taskData(cfg);
  const { model: sft, tokenizer } = await loadSft(run, false);
  const { gold, judge, checkable } = taskLabelers(cfg);
  // The proxy is what RL optimised: the reward model, or a task's checkable reward.
  const rm = checkable ? undefined : await loadRewardModel(run);
  const proxy: RewardFunction = checkable ?? rm!;
  const prompts = {
    tokens: data.evalPrompts.map((p) => tokenizer.encode(p)),
    texts: data.evalPrompts,
    ...(data.answers ? { records: promptRecords(data, data.evalPrompts) } : {}),
  };
  const generation = {
    maxNewTokens: cfg.eval.maxNewTokens,
    temperature: cfg.eval.temperature,
    stopTokenIds: tokenizerStopOptions(tokenizer).stopTokenIds,
  };
  const seed = `${cfg.seed}/eval`;
  const done: string[] = [];
  const have = (name: string) =>
    (ctx.resume || (name === 'sft' && !options.reevaluateSft)) &&
    existsSync(run.evalPath(name)) &&
    existsSync(run.samplesPath(name));
  try {
    const all: EvalTarget[] = [{ name: 'sft', algo: 'sft', step: 0 }, ...targets];
    const task = ctx.progress.task('eval', all.length);
    let baseline: SampleRecord[] | undefined;
    let i = 0;
    for (const target of all) {
      checkAborted(ctx, 'eval');
      if (have(target.name)) {
        if (target.name === 'sft') baseline = await readSamples(run.root, 'sft');
        task.update(++i, { skipped: target.name });
        continue;
      }
      let policy: CausalLM = sft;
      if (target.dir) policy = (await loadModelDir(target.dir, { trainable: false })).model;
      try {
        const evaluation = await evaluatePolicy({
          name: target.name,
          algo: target.algo,
          step: target.step,
          policy,
          sft,
          proxy,
          gold,
          judge,
          tokenizer,
          prompts,
          generation,
          seed,
          greedyGold: cfg.task === 'arithmetic',
          ...(baseline ? { baseline: { samples: baseline } } : {}),
          ...(target.klCoef !== undefined ? { klCoef: target.klCoef } : {}),
          ...(target.seed !== undefined ? { trainSeed: target.seed } : {}),
        });
        await writeEvaluation(run.root, evaluation);
        if (target.name === 'sft') baseline = evaluation.samples;
        const r = evaluation.result;
        done.push(target.name);
        task.update(++i, {
          [target.name]: `gold ${r.gold.mean.toFixed(3)} proxy ${r.proxy.mean.toFixed(3)} KL ${r.klToSft.mean.toFixed(2)}`,
        });
      } finally {
        if (policy !== sft) policy.dispose();
      }
    }
    task.finish(`${all.length} policies (${done.length} evaluated now) on ${prompts.texts.length} prompts`);
  } finally {
    sft.dispose();
    rm?.dispose();
  }
  return done;
}

/** The main runs (`train.algos`) that finished. */
export function finishedMainRuns(ctx: StageContext): string[] {
  const missing = ctx.cfg.train.algos.filter((a) => !trainRunDone(ctx, a));
  if (missing.length > 0) {
    ctx.progress.line(`  note: not trained (skipped in evaluation): ${missing.join(', ')}`);
  }
  return ctx.cfg.train.algos.filter((a) => trainRunDone(ctx, a));
}

export async function evalStage(ctx: StageContext): Promise<void> {
  const runs = finishedMainRuns(ctx);
  // The policies in child processes where eval.parallel allows (../eval-parallel.ts).
  await evaluateConcurrently(ctx, evalTargets(ctx, runs));
  const results = await updateHeadToHead(ctx.run.root);
  const sft = results.find((r) => r.name === 'sft');
  for (const r of results) {
    if (r.name === 'sft') continue;
    if (ctx.cfg.task === 'arithmetic') {
      ctx.progress.line(
        `  ${r.name.padEnd(10)} held-out accuracy ${r.gold.mean.toFixed(3)} greedy (SFT ${sft?.gold.mean.toFixed(3) ?? '-'}), ` +
          `${r.goldSampled?.mean.toFixed(3) ?? '-'} sampled (SFT ${sft?.goldSampled?.mean.toFixed(3) ?? '-'}), ` +
          `reward ${r.proxy.mean.toFixed(3)}, KL ${r.klToSft.mean.toFixed(2)}`,
      );
      continue;
    }
    ctx.progress.line(
      `  ${r.name.padEnd(10)} gold ${r.gold.mean.toFixed(3)} (SFT ${sft?.gold.mean.toFixed(3) ?? '-'}), judge ${r.judge.mean.toFixed(3)}, ` +
        `proxy ${r.proxy.mean.toFixed(3)}, KL ${r.klToSft.mean.toFixed(2)}, win vs SFT (judge) ${(100 * r.winRates.vsSft.judge).toFixed(0)}%`,
    );
  }
}
