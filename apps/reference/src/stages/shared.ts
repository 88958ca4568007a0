/**
 * Helpers shared by the stages: the task data (memoised per config), model directories of earlier stages,
 * and a clear error when a stage's input is missing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RewardModel } from '@relign/reward-model';
import type { RelignConfig } from '../config/schema.js';
import type { RunDir } from '../run-dir.js';
import { loadTaskData, type TaskData } from '../task/data.js';
import { loadModelDir, type ModelAndTokenizer } from '../task/models.js';
import { loadTokenizer } from '@relign/lm';

let cached: { key: string; data: Promise<TaskData> } | undefined;

/** The task data of a config (loaded once per process for the same seed and data settings). */
export function taskData(cfg: RelignConfig): Promise<TaskData> {
  const key = JSON.stringify([cfg.task, cfg.seed, cfg.data, cfg.label.prompts, cfg.arithmetic.maxOperand]);
  if (cached?.key !== key) cached = { key, data: loadTaskData(cfg) };
  return cached.data;
}

/** Throws naming the stage that makes `path` when it is missing. */
export function requireFile(path: string, madeBy: string): void {
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: run \`relign ${madeBy}\` first (or \`relign run\`, which runs every stage).`,
    );
  }
}

/** The SFT model and tokenizer of a run. */
export async function loadSft(run: RunDir, trainable = true): Promise<ModelAndTokenizer> {
  requireFile(join(run.sftDir, 'model.safetensors'), 'sft');
  return loadModelDir(run.sftDir, { trainable });
}

/** The run's reward model (frozen), with its tokenizer attached for text inputs. */
export async function loadRewardModel(run: RunDir): Promise<RewardModel> {
  requireFile(join(run.rewardDir, 'model.safetensors'), 'reward');
  const tokenizer = await loadTokenizer(run.rewardDir);
  return RewardModel.fromPretrained(run.rewardDir, { tokenizer, trainable: false });
}

/** Round to `digits` significant decimals for JSON records. */
export function round(x: number, digits = 4): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x;
}
