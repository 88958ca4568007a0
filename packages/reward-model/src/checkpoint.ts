/**
 * Resumable reward-model training checkpoints, with the protocol of `@relign/lm`'s SFT checkpoints:
 *
 * ```
 * latest.json                       {"checkpoint": "step-00000120-a1b2c3", "step": 120}   (written last)
 * step-00000120-a1b2c3/
 *   config.json, model.safetensors, reward_stats.json   (RewardModel.save: loadable with fromPretrained)
 *   optimizer.safetensors                               (AdamW.state(): m.<param>, v.<param>)
 *   trainer_state.json                                  (step, data position, RNG state, metrics)
 * ```
 * A checkpoint becomes visible only when `latest.json` is atomically replaced after its directory is
 * complete; older `step-*` directories are removed afterwards.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { latestCheckpoint, saveTrainingCheckpoint } from '@relign/lm';
import { loadTensors, type AdamW, type RngState } from '@relign/tensor';
import { RewardModel } from './reward-model.js';

export const RM_OPTIMIZER_FILE = 'optimizer.safetensors';
export const RM_TRAINER_STATE_FILE = 'trainer_state.json';

/** What a resumed run must share with its checkpoint. */
export interface RewardRunFingerprint {
  numTrain: number;
  numEval: number;
  batchSize: number;
  seed: string;
  lmCoef: number;
  margin: number;
}

/** Everything besides tensors that a resumed reward-model run needs (plain JSON). */
export interface RewardTrainerState {
  version: 1;
  kind: 'reward-model';
  /** Loop steps done (skipped updates included). */
  step: number;
  /** The schedule's total steps. */
  totalSteps: number;
  /** Optimizer updates applied. */
  optimizerStep: number;
  /** Data position: epoch and index into that epoch's permutation. */
  epoch: number;
  index: number;
  /** State of the data RNG just before it drew the current epoch's permutation. */
  epochRng: RngState;
  /** Train losses and accuracies of the last steps. */
  recentLosses: number[];
  recentAccuracies: number[];
  skippedSteps: number;
  tokensSeen: number;
  elapsedSeconds: number;
  fingerprint: RewardRunFingerprint;
  lastEval?: { step: number; accuracy: number; meanMargin: number; loss: number; count: number };
}

/**
 * Writes a checkpoint of the reward model, optimizer and trainer state, in the layout and with the atomicity of
 * `@relign/lm`'s SFT checkpoints (the same files; the model directory also holds the head). @returns its directory.
 */
export async function saveRewardCheckpoint(
  checkpointDir: string,
  rm: RewardModel,
  optimizer: AdamW,
  state: RewardTrainerState,
): Promise<string> {
  return saveTrainingCheckpoint(checkpointDir, rm, optimizer, state);
}

/**
 * Restores the latest checkpoint of `checkpointDir` into `rm` (parameters assigned in place; the
 * normaliser is left as it is, training does not change it) and `optimizer`.
 *
 * @returns the trainer state, or undefined when the directory holds no checkpoint.
 * @throws Error when the checkpoint is not a reward-model checkpoint or its shapes differ.
 */
export async function loadRewardCheckpoint(
  checkpointDir: string,
  rm: RewardModel,
  optimizer: AdamW,
): Promise<RewardTrainerState | undefined> {
  const dir = await latestCheckpoint(checkpointDir);
  if (dir === undefined) return undefined;
  const statePath = join(dir, RM_TRAINER_STATE_FILE);
  let state: RewardTrainerState;
  try {
    state = JSON.parse(await readFile(statePath, 'utf8')) as RewardTrainerState;
  } catch (err) {
    throw new Error(`cannot read trainer state ${statePath} (${(err as Error).message}).`, { cause: err });
  }
  if (state.version !== 1 || state.kind !== 'reward-model' || !Number.isInteger(state.step)) {
    throw new Error(
      `${statePath}: not a reward-model trainer state (version ${String(state.version)}, kind ${String(state.kind)}); ` +
        'use another checkpointDir.',
    );
  }
  const saved = await RewardModel.fromPretrained(dir);
  try {
    const target = rm.variables();
    const source = saved.variables();
    for (const [name, v] of target) {
      const s = source.get(name);
      if (!s || !tf.util.arraysEqual(s.shape, v.shape)) {
        throw new Error(
          `checkpoint ${dir}: parameter ${name} is ${s ? `[${s.shape}]` : 'missing'} but the model's is [${v.shape}]; ` +
            'resume with the same model configuration (and head bias setting).',
        );
      }
    }
    for (const [name, v] of target) v.assign(source.get(name)!);
  } finally {
    saved.dispose();
  }
  const tensors = await loadTensors(join(dir, RM_OPTIMIZER_FILE));
  try {
    optimizer.load({ step: state.optimizerStep, tensors });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return state;
}
