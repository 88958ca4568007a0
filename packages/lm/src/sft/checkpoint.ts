/**
 * Training checkpoints: model weights, AdamW moments, RNG and data position, so that a resumed run ends
 * bit-identical to an uninterrupted one (same backend).
 *
 * Layout of `checkpointDir`:
 * ```
 * latest.json                     {"checkpoint": "step-00000120-a1b2c3", "step": 120}   (written last)
 * step-00000120-a1b2c3/
 *   config.json, model.safetensors  (CausalLM.save: HF layout, loadable with CausalLM.fromPretrained)
 *   optimizer.safetensors           (AdamW.state(): m.<param>, v.<param>)
 *   trainer_state.json              (step, schedule, data position, RNG state, running metrics)
 * ```
 * A checkpoint becomes visible only when `latest.json` is atomically replaced after every file of its
 * directory is complete, so a crash mid-save leaves the previous checkpoint in force. Older `step-*`
 * directories are removed afterwards.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadTensors, saveTensors, writeFileAtomic, type AdamW, type RngState } from '@relign/tensor';
import { CausalLM } from '../model/gpt2.js';

export const LATEST_FILE = 'latest.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';

/** What a run must share with the checkpoint it resumes (checked on resume). */
export interface RunFingerprint {
  numTrain: number;
  numEval: number;
  batchSize: number;
  seed: string;
}

/** Everything besides tensors that a resumed run needs (plain JSON). */
export interface TrainerState {
  version: 1;
  /** Loop steps done (batches consumed, skipped updates included). */
  step: number;
  /** The schedule's total steps (fixed when the run started, or after time-budget calibration). */
  totalSteps: number;
  /** Optimizer updates applied (skipped steps excluded). */
  optimizerStep: number;
  /** Data position: epoch, and index into that epoch's permutation of the training examples. */
  epoch: number;
  index: number;
  /** State of the data RNG just before it drew the current epoch's permutation. */
  epochRng: RngState;
  /** Train losses of the last steps (the returned `trainLoss` averages them). */
  recentLosses: number[];
  skippedSteps: number;
  tokensSeen: number;
  /** Wall-clock seconds of training so far (over all resumed segments). */
  elapsedSeconds: number;
  fingerprint: RunFingerprint;
  lastEval?: { step: number; loss: number; perplexity: number };
}

/**
 * Writes a checkpoint (see the module comment for the layout and atomicity). `model` is anything that saves
 * itself into a directory (a `CausalLM`, or a reward model with its head); `state` is the trainer's JSON state.
 * @returns the checkpoint's directory.
 */
export async function saveTrainingCheckpoint<S extends { step: number } = TrainerState>(
  checkpointDir: string,
  model: { save(dir: string): Promise<void> },
  optimizer: AdamW,
  state: S,
): Promise<string> {
  await mkdir(checkpointDir, { recursive: true });
  // A unique name: never overwrites a directory that latest.json may point to.
  const name = `step-${String(state.step).padStart(8, '0')}-${randomBytes(3).toString('hex')}`;
  const dir = join(checkpointDir, name);
  await mkdir(dir);
  await model.save(dir);
  const opt = optimizer.state();
  try {
    await saveTensors(join(dir, OPTIMIZER_FILE), opt.tensors, { step: String(opt.step) });
  } finally {
    for (const t of opt.tensors.values()) t.dispose();
  }
  await writeFileAtomic(
    join(dir, TRAINER_STATE_FILE),
    JSON.stringify({ ...state, optimizerStep: opt.step }, null, 2) + '\n',
  );
  await writeFileAtomic(
    join(checkpointDir, LATEST_FILE),
    JSON.stringify({ checkpoint: name, step: state.step }) + '\n',
  );
  for (const entry of await readdir(checkpointDir)) {
    if (entry.startsWith('step-') && entry !== name)
      await rm(join(checkpointDir, entry), { recursive: true, force: true });
  }
  return dir;
}

/** The directory `latest.json` points to, or undefined when `checkpointDir` holds no checkpoint. */
export async function latestCheckpoint(checkpointDir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(checkpointDir, LATEST_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let name: unknown;
  try {
    name = (JSON.parse(text) as { checkpoint?: unknown }).checkpoint;
  } catch (err) {
    throw new Error(`${join(checkpointDir, LATEST_FILE)} is not valid JSON (${(err as Error).message}).`);
  }
  if (typeof name !== 'string' || !/^step-[\w-]+$/.test(name)) {
    throw new Error(
      `${join(checkpointDir, LATEST_FILE)}: "checkpoint" must name a step-* directory (got ${JSON.stringify(name)}).`,
    );
  }
  return join(checkpointDir, name);
}

/**
 * Restores the latest checkpoint of `checkpointDir` into `model` (its variables are assigned in place) and
 * `optimizer`, and returns the trainer state; undefined when there is no checkpoint.
 *
 * @throws Error when the checkpoint's model has a different configuration/shape, or files are missing.
 */
export async function loadTrainingCheckpoint(
  checkpointDir: string,
  model: CausalLM,
  optimizer: AdamW,
): Promise<TrainerState | undefined> {
  const dir = await latestCheckpoint(checkpointDir);
  if (dir === undefined) return undefined;
  const statePath = join(dir, TRAINER_STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(await readFile(statePath, 'utf8')) as TrainerState;
  } catch (err) {
    throw new Error(`cannot read trainer state ${statePath} (${(err as Error).message}).`, { cause: err });
  }
  if (state.version !== 1 || !Number.isInteger(state.step)) {
    throw new Error(`${statePath}: unsupported trainer state (version ${String(state.version)}).`);
  }
  const saved = await CausalLM.fromPretrained(dir);
  try {
    const target = model.variables();
    const source = saved.variables();
    for (const [name, v] of target) {
      const s = source.get(name);
      if (!s || !tf.util.arraysEqual(s.shape, v.shape)) {
        throw new Error(
          `checkpoint ${dir}: parameter ${name} is ${s ? `[${s.shape}]` : 'missing'} but the model's is [${v.shape}]; ` +
            'resume with the same model configuration.',
        );
      }
    }
    for (const [name, v] of target) v.assign(source.get(name)!);
  } finally {
    saved.dispose();
  }
  const tensors = await loadTensors(join(dir, OPTIMIZER_FILE));
  try {
    optimizer.load({ step: state.optimizerStep, tensors });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return state;
}
