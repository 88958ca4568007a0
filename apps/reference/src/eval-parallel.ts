/**
 * Concurrent evaluation (`eval.parallel`): after the SFT model (the baseline of every win rate vs SFT,
 * evaluated here first), the policies are independent — each is sampled with the same seed on the same
 * prompts and scored against the SFT samples read back from `samples/sft.jsonl` — so they are dealt out
 * round-robin to child processes (./train-worker.ts) that write their own `eval/<name>.json` and
 * `samples/<name>.jsonl`, bit-identical to one evaluation after another. The plan is the train stages' one
 * (./train-parallel.ts: `auto` = as many at once as RELIGN_THREADS or the cores allow on a CPU backend, one
 * on a GPU backend), over the policies to evaluate.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism, freemem } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { InterruptedError, type StageContext } from './context.js';
import { evaluateTargets, type EvalTarget } from './stages/eval.js';
import { CombinedBar, planTrainParallel, runInChild } from './train-parallel.js';

/** Evaluates the SFT model and `targets` (as `evaluateTargets` with `reevaluateSft`), concurrently where allowed. */
export async function evaluateConcurrently(ctx: StageContext, targets: readonly EvalTarget[]): Promise<void> {
  const { run } = ctx;
  const pending = targets.filter(
    (t) => !(ctx.resume && existsSync(run.evalPath(t.name)) && existsSync(run.samplesPath(t.name))),
  );
  const plan = planTrainParallel({
    setting: ctx.cfg.eval.parallel,
    stages: pending.length,
    backend: tf.getBackend(),
    cores: availableParallelism(),
    threadsEnv: process.env.RELIGN_THREADS,
    freeBytes: freemem(),
    stageBytes: evalBytes(ctx),
    key: 'eval.parallel',
  });
  if (plan.concurrent < 2) {
    await evaluateTargets(ctx, targets, { reevaluateSft: true });
    return;
  }
  // The SFT model first, here: its samples are every other policy's baseline.
  await evaluateTargets(ctx, [], { reevaluateSft: true });
  const n = plan.concurrent;
  const shards = Array.from({ length: n }, (_, k) => pending.filter((_, i) => i % n === k));
  ctx.progress.line(
    `  ${pending.length} policies, ${n} at a time in child processes (${plan.why}; ` +
      `RELIGN_THREADS=${plan.threadsPerStage} each)`,
  );
  const bar = new CombinedBar(ctx, n, 'eval');
  const ends = await Promise.allSettled(
    shards.map((shard, k) =>
      runInChild(ctx, {
        name: `eval ${k + 1}`,
        work: { evaluate: shard },
        threads: plan.threadsPerStage,
        bar,
      }),
    ),
  );
  bar.done();
  const failed = ends.flatMap((e, k) =>
    e.status === 'rejected' && !(e.reason instanceof InterruptedError)
      ? [`eval ${k + 1} (${shards[k]!.map((t) => t.name).join(', ')}): ${(e.reason as Error).message}`]
      : [],
  );
  if (failed.length > 0) throw new Error(`evaluation failed: ${failed.join('; ')}`);
  if (ctx.signal.aborted || ends.some((e) => e.status === 'rejected')) throw new InterruptedError('eval');
}

/** Rough memory of one evaluating process: the runtime, the SFT, reward and one policy model. */
function evalBytes(ctx: StageContext): number {
  const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);
  return (
    512 * 2 ** 20 +
    4 *
      (2 * size(join(ctx.run.sftDir, 'model.safetensors')) +
        size(join(ctx.run.rewardDir, 'model.safetensors')))
  );
}
