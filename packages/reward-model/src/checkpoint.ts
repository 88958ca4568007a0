/**
 * Resumable reward-model training checkpoints: the supervised loop's checkpoints of `@relign/lm` (the folder
 * format of `@relign/tensor`'s `writeCheckpointDir`) with kind "reward-model". A checkpoint directory holds
 * ```
 * config.json, model.safetensors, reward_stats.json   (RewardModel.save: loadable with fromPretrained)
 * optimizer.safetensors                               (AdamW.state(): m.<param>, v.<param>)
 * trainer_state.json                                  (step, data position, RNG state, metrics)
 * ```
 */
import {
  restoreTrainingCheckpoint,
  saveTrainingCheckpoint,
  OPTIMIZER_FILE,
  type LoopState,
} from '@relign/lm';
import { TRAINER_STATE_FILE, type AdamW } from '@relign/tensor';
import { RewardModel } from './reward-model.js';

export const RM_OPTIMIZER_FILE = OPTIMIZER_FILE;
export const RM_TRAINER_STATE_FILE = TRAINER_STATE_FILE;
/** The trainer kind of reward-model checkpoints (`trainer_state.json`). */
export const REWARD_CHECKPOINT_KIND = 'reward-model';

/** What a resumed run must share with its checkpoint. */
export interface RewardRunFingerprint {
  numTrain: number;
  numEval: number;
  batchSize: number;
  seed: string;
  lmCoef: number;
  margin: number;
}

/**
 * Everything besides tensors that a resumed reward-model run needs: the supervised loop's state, whose
 * windows are `loss` and `accuracy` and whose `lastEval` holds accuracy, meanMargin, loss and count.
 */
export type RewardTrainerState = LoopState;

/**
 * Writes a checkpoint of the reward model, optimizer and trainer state (see the module comment).
 * @returns its directory.
 */
export async function saveRewardCheckpoint(
  checkpointDir: string,
  rm: RewardModel,
  optimizer: AdamW,
  state: RewardTrainerState,
  options: { keep?: number } = {},
): Promise<string> {
  return saveTrainingCheckpoint(checkpointDir, rm, optimizer, state, {
    ...options,
    kind: REWARD_CHECKPOINT_KIND,
  });
}

/**
 * Restores the latest checkpoint of `checkpointDir` into `rm` (parameters assigned in place; the
 * normaliser is left as it is, training does not change it) and `optimizer`. Reads the checkpoints of earlier
 * relign versions too.
 *
 * @returns the trainer state, or undefined when the directory holds no checkpoint.
 * @throws Error when the checkpoint is not a reward-model checkpoint, is damaged, or its shapes differ.
 */
export async function loadRewardCheckpoint(
  checkpointDir: string,
  rm: RewardModel,
  optimizer: AdamW,
): Promise<RewardTrainerState | undefined> {
  return restoreTrainingCheckpoint(checkpointDir, rm, optimizer, {
    kind: REWARD_CHECKPOINT_KIND,
    load: (dir) => RewardModel.fromPretrained(dir),
    hint: 'resume with the same model configuration (and head bias setting)',
  });
}
