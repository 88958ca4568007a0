/**
 * `relign train --algo <name>`: RL from the SFT model against the proxy reward model with one optimizer
 * (any plugin: `ppo-max`, `dpo` (online), `p3o-v1`, `p3o-v2`, `grpo`, `rloo`, or an installed one), driven by
 * the Trainer of @relign/core on the RL prompts (first words of held-out sentences not used for evaluation;
 * task arithmetic: the training problems as records `{ prompt, answer }`, rewarded by the checkable reward).
 *
 * `<runDir>/train/<run>/` receives `metrics.jsonl` (one line per iteration), `checkpoints/` (the Trainer's:
 * every `train.checkpointEvery` iterations, at the end and on Ctrl-C; `--resume` continues from the latest
 * exactly), `evalpoints/step-<N>/` (a policy snapshot every `train.evalEvery` iterations, evaluated by
 * `relign eval` as frontier points), `final/` (the trained policy + tokenizer) and `result.json`.
 * `<run>` is the optimizer's name, or `<algo>-kl<β>-s<seed>` for the extra runs of `relign frontier`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolvePluginConfig, Trainer, type KlControlOptions } from '@relign/core';
import type { RewardFunction } from '@relign/reward-model';
import { tokenizerStopOptions } from '@relign/rollout';
import { InterruptedError, type StageContext } from '../context.js';
import { taskLabelers } from '../eval/index.js';
import { attachConfiguredLora, disposeWithAdapter } from '../lora.js';
import { pluginFor } from '../plugins.js';
import { promptRecords } from '../task/data.js';
import { writeJson } from '../run-dir.js';
import { saveModelDir } from '../task/models.js';
import { loadRewardModel, loadSft, requireFile, round, taskData } from './shared.js';

/** One RL run. */
export interface TrainRunSpec {
  algo: string;
  /** Directory name under `train/` (default: the algo). */
  name?: string;
  /** KL coefficient (default `train.klCoef`); for dpo also its β unless `algos.dpo.beta` is set. */
  klCoef?: number;
  /** Training seed (default the config's). */
  seed?: number;
}

/** `result.json` of a training run. */
export interface TrainRunResult {
  run: string;
  algo: string;
  klCoef: number;
  seed: number;
  iterations: number;
  pluginConfig: Record<string, unknown>;
  stopped: 'completed' | 'aborted';
  evalpoints: number[];
  seconds: number;
  final: { 'reward/mean'?: number; 'objective/kl'?: number };
}

/** Name of the extra run of a frontier sweep. */
export function sweepRunName(algo: string, klCoef: number, seed: number): string {
  return `${algo}-kl${klCoef}-s${seed}`;
}

/** Whether a run finished (its final policy is written). */
export function trainRunDone(ctx: StageContext, name: string): boolean {
  return (
    existsSync(join(ctx.run.trainDir(name), 'result.json')) &&
    existsSync(join(ctx.run.trainDir(name), 'final', 'model.safetensors'))
  );
}

export async function trainStage(ctx: StageContext, spec: TrainRunSpec): Promise<TrainRunResult> {
  const { cfg, run } = ctx;
  const t = cfg.train;
  const name = spec.name ?? spec.algo;
  const klCoef = spec.klCoef ?? t.klCoef;
  const seed = spec.seed ?? cfg.seed;
  const dir = run.trainDir(name);
  const data = await taskData(cfg);
  // Task arithmetic trains on its checkable reward: the reward model only starts PPO-max's critic.
  const { checkable } = taskLabelers(cfg);
  const needsRewardModel = !checkable || spec.algo === 'ppo-max';
  if (needsRewardModel) requireFile(join(run.rewardDir, 'model.safetensors'), 'reward');
  const rewardModel = needsRewardModel ? await loadRewardModel(run) : undefined;
  const { model: policy, tokenizer } = await loadSft(run, true);
  // Typed loosely: the Trainer's record type differs by task.
  let owned: { dispose(): void } | undefined;
  try {
    // lora.enabled: only the adapters train; the Trainer's reference is the base with them disabled.
    attachConfiguredLora(policy, cfg, `${seed}/train/${spec.algo}/lora`, run.sftDir);
    const plugin = await pluginFor(spec.algo, rewardModel);
    const pluginConfig: Record<string, unknown> = { ...(cfg.algos[spec.algo] ?? {}) };
    // DPO's β is its KL coefficient (docs/algorithms.md §3.1): a KL sweep moves it. GRPO's `beta` (default 0,
    // TRL's) decides whether it asks for reference log-probs, without which the run's β cannot apply: it
    // follows the run's KL coefficient too unless set.
    if (
      (spec.algo === 'dpo' || spec.algo === 'grpo') &&
      (spec.klCoef !== undefined || pluginConfig.beta === undefined)
    ) {
      pluginConfig.beta = klCoef;
    }
    const kl: KlControlOptions =
      t.kl === 'adaptive'
        ? { kind: 'adaptive', initial: klCoef, target: t.klTarget }
        : { kind: 'fixed', value: klCoef };
    // A fresh run starts clean, removing only what relign wrote there before (never the user's files).
    if (!ctx.resume) await run.removeOwned('train', name);
    const prompts = data.rlPrompts;
    // Task arithmetic: the checkable reward, reading each prompt's answer from its record (as TRL hands a
    // dataset's columns to reward functions).
    const reward: RewardFunction = checkable ?? rewardModel!;
    const promptInput = data.answers
      ? promptRecords(data, prompts)
      : { tokens: prompts.map((p) => tokenizer.encode(p)), texts: prompts };
    const trainer = new Trainer({
      policy,
      tokenizer,
      prompts: promptInput,
      reward,
      plugin,
      pluginConfig,
      generation: {
        maxNewTokens: t.maxNewTokens,
        temperature: t.temperature,
        ...tokenizerStopOptions(tokenizer),
      },
      promptsPerIteration: t.promptsPerIteration,
      iterations: t.iterations,
      kl,
      checkpointDir: join(dir, 'checkpoints'),
      checkpointEvery: t.checkpointEvery,
      // Two: should the newest hold a bad update, `--resume` can start from the one before (delete latest.json's).
      keepCheckpoints: 2,
      resume: ctx.resume,
      seed: `${seed}/train/${spec.algo}`,
      signal: ctx.signal,
      metricsPath: join(dir, 'metrics.jsonl'),
    });
    owned = trainer;
    // Skipped updates, settings changed on resume, ...: the user must see them (registered before init,
    // which emits the resume warnings).
    trainer.on('warning', ({ step, message }) =>
      ctx.progress.line(`  warning: train ${name}, iteration ${step}: ${message}`),
    );
    const t0 = performance.now();
    await trainer.init();
    const startStep = trainer.stepsDone;
    if (startStep > 0) ctx.progress.line(`  ${name}: resuming at iteration ${startStep}/${t.iterations}`);
    const task = ctx.progress.task(`train ${name}`, t.iterations, startStep);
    let last: Record<string, number> = {};
    // Step by step (rather than trainer.train()) to snapshot the policy at the frontier's evaluation points.
    while (trainer.stepsDone < t.iterations && !ctx.signal.aborted) {
      const m = await trainer.step();
      last = m;
      const step = trainer.stepsDone;
      task.update(step, {
        reward: m['reward/mean'] ?? NaN,
        kl: m['objective/kl'] ?? NaN,
        ...(m['loss/policy'] !== undefined ? { loss: m['loss/policy'] } : {}),
        len: m['response/length_mean'] ?? NaN,
      });
      if (step % t.evalEvery === 0 && step < t.iterations) {
        const snap = join(dir, 'evalpoints', `step-${step}`);
        await saveModelDir(snap, { model: policy, tokenizer });
      }
    }
    // Writes the last checkpoint (at the end, or now when Ctrl-C stopped the loop).
    const res = await trainer.train();
    if (res.stopped === 'aborted' || ctx.signal.aborted) {
      throw new InterruptedError(`train ${name}`, `at iteration ${trainer.stepsDone}/${t.iterations}`);
    }
    const finalDir = join(dir, 'final');
    // With LoRA: the SFT weights unchanged + the PEFT adapter in final/adapter/ (see ../lora.ts).
    await saveModelDir(finalDir, { model: policy, tokenizer });
    const evalpoints: number[] = [];
    for (let s = t.evalEvery; s < t.iterations; s += t.evalEvery) evalpoints.push(s);
    const result: TrainRunResult = {
      run: name,
      algo: spec.algo,
      klCoef,
      seed,
      iterations: trainer.stepsDone,
      pluginConfig: resolvePluginConfig(plugin, pluginConfig) as Record<string, unknown>,
      stopped: res.stopped,
      evalpoints,
      seconds: round((performance.now() - t0) / 1000, 2),
      final: {
        ...(last['reward/mean'] !== undefined ? { 'reward/mean': round(last['reward/mean']) } : {}),
        ...(last['objective/kl'] !== undefined ? { 'objective/kl': round(last['objective/kl']) } : {}),
      },
    };
    await writeJson(join(dir, 'result.json'), result);
    task.finish(
      `reward ${last['reward/mean']?.toFixed(3) ?? '-'}, KL ${last['objective/kl']?.toFixed(3) ?? '-'}` +
        (startStep > 0 ? ` (resumed at ${startStep})` : ''),
    );
    return result;
  } finally {
    owned?.dispose();
    disposeWithAdapter(policy);
    rewardModel?.dispose();
  }
}
