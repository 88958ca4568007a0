/**
 * Checkpoints of the supervised training loop: model weights, AdamW moments, data position and RNG, so that
 * a resumed run ends bit-identical to an uninterrupted one (same backend). The folder format (atomic writes,
 * `latest.json`, versioned and checked `trainer_state.json`, pruning) is `@relign/tensor`'s
 * `writeCheckpointDir`; a checkpoint directory holds:
 * ```
 * config.json, model.safetensors, ...   (the model's save(): CausalLM or RewardModel, loadable with fromPretrained)
 * adapter_config.json, adapter_model.safetensors   (a LoRA model's adapter, in PEFT's layout; the base's
 *                                       frozen weights are in model.safetensors as well, so the folder is whole)
 * optimizer.safetensors                 (AdamW.state(): m.<param>, v.<param>)
 * trainer_state.json                    (kind "causal-lm" / "reward-model" / ...; state: LoopState)
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  latestCheckpoint,
  loadTensors,
  readCheckpointState,
  rngFromState,
  saveTensors,
  writeCheckpointDir,
  type AdamW,
  type CheckpointStateFile,
  type RngState,
  nodeFs,
  nodePath,
} from '@relign/tensor';
import { CausalLM } from '../model/causal-lm.js';
import { loraAdapterOf } from '../lora/attach.js';
import { ADAPTER_CONFIG_FILE } from '../lora/config.js';
import { loadLoraWeights, readAdapterConfig, saveLoraAdapter } from '../lora/peft.js';

export const OPTIMIZER_FILE = 'optimizer.safetensors';

/** What a run must share with the checkpoint it resumes (checked on resume): data sizes, batch size, seed, ... */
export type LoopFingerprint = Record<string, string | number>;

/** Everything besides tensors that a resumed run needs: the `state` of `trainer_state.json` (plain JSON). */
export interface LoopState {
  /** Loop steps done (batches consumed, skipped updates included). */
  step: number;
  /** The schedule's total steps (0 while a time-budget run has not fixed it). */
  totalSteps: number;
  /** Optimizer updates applied (skipped steps excluded). */
  optimizerStep: number;
  /** Data position: epoch, and index into that epoch's permutation of the training examples. */
  epoch: number;
  index: number;
  /** State of the data RNG just before it drew the current epoch's permutation. */
  epochRng: RngState;
  /** Values of the last non-skipped steps, per windowed metric (`loss`, and e.g. `accuracy`). */
  recent: Record<string, number[]>;
  skippedSteps: number;
  tokensSeen: number;
  /** Wall-clock seconds of training so far (over all resumed segments). */
  elapsedSeconds: number;
  fingerprint: LoopFingerprint;
  /** The last evaluation and the step it ran at. */
  lastEval?: { step: number } & Record<string, number>;
}

/** A model the loop trains and checkpoints. */
export interface CheckpointModel {
  variables(): Map<string, tf.Variable>;
  save(dir: string): Promise<void>;
}

/**
 * Writes a checkpoint of `model`, `optimizer` and `state` into `checkpointDir` (see the module comment).
 * @param options.kind the trainer kind recorded (default "causal-lm"); `keep` checkpoints are kept (default 1).
 * @returns the checkpoint's directory.
 */
export async function saveTrainingCheckpoint(
  checkpointDir: string,
  model: { save(dir: string): Promise<void> },
  optimizer: AdamW,
  state: LoopState,
  options: { kind?: string; keep?: number } = {},
): Promise<string> {
  const opt = optimizer.state();
  try {
    return await writeCheckpointDir(
      checkpointDir,
      {
        kind: options.kind ?? 'causal-lm',
        step: state.step,
        state: { ...state, optimizerStep: opt.step },
        write: async (dir) => {
          await model.save(dir);
          // A LoRA model's trained parameters are its adapter's: without them a resume starts a fresh adapter.
          const adapter = model instanceof CausalLM ? loraAdapterOf(model) : undefined;
          if (adapter !== undefined) await saveLoraAdapter(adapter, dir);
          await saveTensors(nodePath.join(dir, OPTIMIZER_FILE), opt.tensors, { step: String(opt.step) });
        },
      },
      { keep: options.keep ?? 1 },
    );
  } finally {
    for (const t of opt.tensors.values()) t.dispose();
  }
}

/** How {@link restoreTrainingCheckpoint} reads the model of a checkpoint. */
export interface RestoreOptions {
  /** The trainer kind the checkpoint must have. */
  kind: string;
  /** Loads the checkpoint directory's model (e.g. `CausalLM.fromPretrained`); disposed after the copy. */
  load(dir: string): Promise<{ variables(): Map<string, tf.Variable>; dispose(): void }>;
  /** Said when a parameter's shape differs, e.g. "resume with the same model configuration". */
  hint?: string;
}

/**
 * Restores the latest checkpoint of `checkpointDir` into `model` (its variables are assigned in place) and
 * `optimizer`, and returns the loop state; undefined when there is no checkpoint. Reads the checkpoints of
 * earlier relign versions too (format version 1).
 * @throws Error naming the file and field, when the checkpoint is of another kind, damaged, or its model has a
 *   different configuration.
 */
export async function restoreTrainingCheckpoint(
  checkpointDir: string,
  model: { variables(): Map<string, tf.Variable> },
  optimizer: AdamW,
  options: RestoreOptions,
): Promise<LoopState | undefined> {
  const dir = await latestCheckpoint(checkpointDir);
  if (dir === undefined) return undefined;
  const state = parseLoopState(await readCheckpointState(dir, { kind: options.kind }));
  const saved = await options.load(dir);
  try {
    const target = model.variables();
    const source = saved.variables();
    for (const [name, v] of target) {
      const s = source.get(name);
      if (!s || !tf.util.arraysEqual(s.shape, v.shape)) {
        throw new Error(
          `checkpoint ${dir}: parameter ${name} is ${s ? `[${s.shape}]` : 'missing'} but the model's is [${v.shape}]; ` +
            `${options.hint ?? 'resume with the same model configuration'}.`,
        );
      }
    }
    await checkAdapterMatch(dir, model);
    for (const [name, v] of target) v.assign(source.get(name)!);
  } finally {
    saved.dispose();
  }
  const adapter = model instanceof CausalLM ? loraAdapterOf(model) : undefined;
  if (adapter !== undefined) await loadLoraWeights(adapter, dir);
  const tensors = await loadTensors(nodePath.join(dir, OPTIMIZER_FILE));
  try {
    optimizer.load({ step: state.optimizerStep, tensors });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return state;
}

/**
 * Refuses a checkpoint whose LoRA adapter the model lacks, or the reverse, or whose adapter has another
 * rank, alpha or target modules: the run would silently train something else than the checkpoint's.
 */
async function checkAdapterMatch(dir: string, model: object): Promise<void> {
  const adapter = model instanceof CausalLM ? loraAdapterOf(model) : undefined;
  const hasFile = await nodeFs
    .stat(nodePath.join(dir, ADAPTER_CONFIG_FILE))
    .then(() => true)
    .catch(() => false);
  if (hasFile && adapter === undefined) {
    throw new Error(
      `checkpoint ${dir} holds a LoRA adapter (${ADAPTER_CONFIG_FILE}) but the model has none; ` +
        'resume with LoRA enabled and the same r, alpha and target modules, or use another checkpointDir.',
    );
  }
  if (adapter === undefined) return;
  if (!hasFile) {
    throw new Error(
      `checkpoint ${dir} holds full weights (no ${ADAPTER_CONFIG_FILE}) but the model has a LoRA adapter; ` +
        'resume without LoRA, or use another checkpointDir.',
    );
  }
  const saved = await readAdapterConfig(dir);
  const want = adapter.config;
  const targets = (t: readonly string[] | string | undefined) => (Array.isArray(t) ? [...t].sort() : t);
  const diffs: string[] = [];
  if (saved.r !== want.r) diffs.push(`r ${saved.r} vs ${want.r}`);
  if (saved.loraAlpha !== want.loraAlpha) diffs.push(`lora_alpha ${saved.loraAlpha} vs ${want.loraAlpha}`);
  if (JSON.stringify(targets(saved.targetModules)) !== JSON.stringify(targets(want.targetModules)))
    diffs.push(
      `target_modules ${JSON.stringify(saved.targetModules)} vs ${JSON.stringify(want.targetModules)}`,
    );
  if (diffs.length > 0) {
    throw new Error(
      `checkpoint ${dir}: its LoRA adapter differs from the model's (checkpoint vs model: ${diffs.join('; ')}); ` +
        'resume with the same LoRA settings, or use another checkpointDir.',
    );
  }
}

/**
 * Checks the loop state of a `trainer_state.json` (format version 2, or a version 1 SFT / reward-model file,
 * converted) and returns it typed.
 * @throws Error naming the file and the field that is wrong.
 */
export function parseLoopState(read: CheckpointStateFile): LoopState {
  const { file } = read;
  const o = read.state as Record<string, unknown>;
  const fail = (field: string, want: string): never => {
    throw new Error(
      `${file}: field '${field}' must be ${want} (got ${JSON.stringify(o[field.split('.')[0]!])}). The file is ` +
        'damaged or was not written by relign; resume from another checkpoint or start a new run.',
    );
  };
  const count = (field: string): number => {
    const v = o[field];
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(field, 'an integer >= 0');
  };
  const numbers = (field: string, v: unknown): number[] =>
    Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x))
      ? (v as number[])
      : fail(field, 'an array of finite numbers');
  // Version 1 kept the windows as recentLosses (and, for reward models, recentAccuracies).
  const recent: Record<string, number[]> = {};
  if (read.version === 1) {
    recent.loss = numbers('recentLosses', o.recentLosses);
    if (o.recentAccuracies !== undefined) recent.accuracy = numbers('recentAccuracies', o.recentAccuracies);
  } else {
    const r = o.recent;
    if (r === null || typeof r !== 'object' || Array.isArray(r)) fail('recent', 'an object of number arrays');
    for (const [k, v] of Object.entries(r as Record<string, unknown>)) recent[k] = numbers(`recent.${k}`, v);
  }
  try {
    rngFromState(o.epochRng as RngState);
  } catch (err) {
    fail('epochRng', `an RNG state (${(err as Error).message})`);
  }
  const elapsedSeconds = o.elapsedSeconds;
  if (typeof elapsedSeconds !== 'number' || !(elapsedSeconds >= 0)) fail('elapsedSeconds', 'a number >= 0');
  const fp = o.fingerprint;
  if (
    fp === null ||
    typeof fp !== 'object' ||
    Array.isArray(fp) ||
    !Object.values(fp).every((x) => typeof x === 'string' || typeof x === 'number')
  )
    fail('fingerprint', 'an object of strings and numbers');
  const state: LoopState = {
    step: count('step'),
    totalSteps: count('totalSteps'),
    optimizerStep: count('optimizerStep'),
    epoch: count('epoch'),
    index: count('index'),
    epochRng: o.epochRng as RngState,
    recent,
    skippedSteps: count('skippedSteps'),
    tokensSeen: count('tokensSeen'),
    elapsedSeconds: elapsedSeconds as number,
    fingerprint: fp as LoopFingerprint,
  };
  if (o.lastEval !== undefined) {
    const e = o.lastEval as Record<string, unknown>;
    // JSON has no NaN: a NaN metric was written as null.
    if (
      e === null ||
      typeof e !== 'object' ||
      !Number.isSafeInteger(e.step) ||
      !Object.values(e).every((x) => x === null || typeof x === 'number')
    )
      fail('lastEval', 'an object {step, ...numbers}');
    state.lastEval = Object.fromEntries(
      Object.entries(e).map(([k, x]) => [k, x === null ? Number.NaN : x]),
    ) as LoopState['lastEval'];
  }
  return state;
}

/**
 * Restores the latest causal-LM checkpoint of `checkpointDir` (written by `trainCausalLM`, `sft` or
 * `pretrain`) into `model` and `optimizer`; undefined when there is none. See {@link restoreTrainingCheckpoint}.
 */
export async function loadTrainingCheckpoint(
  checkpointDir: string,
  model: CausalLM,
  optimizer: AdamW,
): Promise<LoopState | undefined> {
  return restoreTrainingCheckpoint(checkpointDir, model, optimizer, {
    kind: 'causal-lm',
    load: (dir) => CausalLM.fromPretrained(dir),
  });
}
