/**
 * Trainer checkpoints: everything a resumed run needs to continue bit-identically (same backend, same seed).
 *
 * Layout of the checkpoint directory:
 * ```
 * latest.json                  {"format": "relign-trainer-checkpoint", "checkpoint": "step-00000012", "step": 12}
 * step-00000012/
 *   policy/config.json, policy/model.safetensors   policy weights (CausalLM.save: loadable with fromPretrained)
 *   plugin.json, plugin.safetensors                 the plugin's state() (optimizer moments, RNG, statistics)
 *   buffer/                                         the replay buffer (ReplayBuffer.save)
 *   trainer_state.json                              counters, trainer RNG, KL controller, prompt position, ...
 * ```
 * Atomicity: a checkpoint is written into `step-N.tmp-<random>/`, renamed to `step-N/` when complete, and
 * only then does `latest.json` (written atomically) point at it. A crash at any point leaves the previous
 * checkpoint in force; leftover `*.tmp-*` directories are removed by the next save.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CONFIG_FILE, WEIGHTS_FILE, type CausalLM } from '@relign/lm';
import { ReplayBuffer } from '@relign/rollout';
import { readSafetensors, writeFileAtomic, type RngState } from '@relign/tensor';
import type { KlControllerState } from './kl.js';
import type { SerializedPluginState } from './state-io.js';
import { validateTrainerState } from './trainer-state.js';

export const LATEST_FILE = 'latest.json';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const PLUGIN_JSON_FILE = 'plugin.json';
export const PLUGIN_TENSORS_FILE = 'plugin.safetensors';
export const POLICY_DIR = 'policy';
export const BUFFER_DIR = 'buffer';
const LATEST_FORMAT = 'relign-trainer-checkpoint';
const STATE_FORMAT = 'relign-trainer-state';
const STEP_RE = /^step-(\d+)$/;
const TMP_RE = /^step-\d+\.(tmp|old)-[0-9a-f]+$/;

/** The JSON part of a checkpoint (`trainer_state.json`). */
export interface TrainerCheckpointState {
  format: typeof STATE_FORMAT;
  version: 1;
  /** Iterations done. */
  step: number;
  /** Policy updates done (the version of the current policy). */
  policyVersion: number;
  /** Prompts handed out so far (the prompt-data position, in samples). */
  samplesSeen: number;
  /** Size of the prompt set the position refers to. */
  numPrompts: number;
  seed: number | string;
  /** The trainer's RNG (rollout seeds). */
  rng: RngState;
  kl: KlControllerState;
  plugin: { name: string; config: Record<string, unknown> };
  /** Running statistics of raw rewards (`reward/running_*`). */
  rewardStats: { count: number; mean: number; m2: number };
  skippedTotal: number;
  /** Fingerprint of the frozen reference's weights, checked on resume. */
  referenceFingerprint: string;
}

/** A checkpoint read back. */
export interface LoadedCheckpoint {
  path: string;
  state: TrainerCheckpointState;
  plugin: SerializedPluginState;
  buffer: ReplayBuffer;
}

function stepName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Writes a checkpoint for iteration `state.step` into `dir` (created if needed) and points `latest.json` at
 * it; then removes all but the newest `keep` checkpoints.
 *
 * @returns the checkpoint's directory.
 */
export async function writeCheckpoint(
  dir: string,
  parts: {
    state: TrainerCheckpointState;
    policy: CausalLM;
    plugin: SerializedPluginState;
    buffer: ReplayBuffer;
  },
  keep = 2,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = stepName(parts.state.step);
  const tmp = join(dir, `${name}.tmp-${randomBytes(6).toString('hex')}`);
  const final = join(dir, name);
  try {
    await mkdir(tmp);
    await parts.policy.save(join(tmp, POLICY_DIR));
    await writeFileAtomic(join(tmp, PLUGIN_JSON_FILE), parts.plugin.json);
    await writeFileAtomic(join(tmp, PLUGIN_TENSORS_FILE), parts.plugin.tensors);
    await parts.buffer.save(join(tmp, BUFFER_DIR));
    await writeFileAtomic(join(tmp, TRAINER_STATE_FILE), JSON.stringify(parts.state, null, 2) + '\n');
    if (await exists(final)) {
      // Same step saved again (e.g. a re-run): move the old one aside first; rename cannot replace a directory.
      const old = join(dir, `${name}.old-${randomBytes(6).toString('hex')}`);
      await rename(final, old);
      await rename(tmp, final);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, final);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`Trainer: writing checkpoint ${final} failed: ${(err as Error).message}`, { cause: err });
  }
  await writeFileAtomic(
    join(dir, LATEST_FILE),
    JSON.stringify({ format: LATEST_FORMAT, checkpoint: name, step: parts.state.step }, null, 2) + '\n',
  );
  await prune(dir, name, keep);
  return final;
}

/** Removes leftovers of interrupted saves and all but the newest `keep` checkpoints (never `current`). */
async function prune(dir: string, current: string, keep: number): Promise<void> {
  const entries = await readdir(dir);
  const steps = entries
    .filter((e) => STEP_RE.test(e))
    .sort()
    .reverse();
  const keepSet = new Set([current, ...steps.slice(0, Math.max(1, keep))]);
  for (const e of entries) {
    if (TMP_RE.test(e) || (STEP_RE.test(e) && !keepSet.has(e))) {
      await rm(join(dir, e), { recursive: true, force: true });
    }
  }
}

/** The directory `latest.json` of `dir` points at, or undefined when there is no checkpoint yet. */
export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  const path = join(dir, LATEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let latest: { format?: unknown; checkpoint?: unknown };
  try {
    latest = JSON.parse(text) as typeof latest;
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message}).`);
  }
  if (
    latest.format !== LATEST_FORMAT ||
    typeof latest.checkpoint !== 'string' ||
    !STEP_RE.test(latest.checkpoint)
  ) {
    throw new Error(
      `${path} is not a relign trainer checkpoint pointer ({"format": "${LATEST_FORMAT}", "checkpoint": "step-N"}).`,
    );
  }
  return join(dir, latest.checkpoint);
}

/**
 * Reads a checkpoint directory (a `step-N` directory); the policy weights are applied by
 * {@link loadPolicyWeights}. With `vocabSize` (the policy's), the replay buffer's token ids are checked against it.
 */
export async function readCheckpoint(
  path: string,
  options: { vocabSize?: number } = {},
): Promise<LoadedCheckpoint> {
  const statePath = join(path, TRAINER_STATE_FILE);
  let state: TrainerCheckpointState;
  try {
    state = JSON.parse(await readFile(statePath, 'utf8')) as TrainerCheckpointState;
  } catch (err) {
    throw new Error(
      `Trainer: cannot read ${statePath} (${(err as Error).message}); is ${path} a trainer checkpoint?`,
    );
  }
  if (state?.format !== STATE_FORMAT || state.version !== 1) {
    throw new Error(`Trainer: ${statePath} is not a version-1 trainer state ("format": "${STATE_FORMAT}").`);
  }
  state = validateTrainerState(state, statePath);
  const pluginJson = await readFile(join(path, PLUGIN_JSON_FILE), 'utf8');
  const pluginBytes = await readFile(join(path, PLUGIN_TENSORS_FILE));
  const buffer = await ReplayBuffer.load(join(path, BUFFER_DIR), options);
  return {
    path,
    state,
    plugin: {
      json: pluginJson,
      tensors: new Uint8Array(pluginBytes.buffer, pluginBytes.byteOffset, pluginBytes.byteLength),
    },
    buffer,
  };
}

/**
 * Assigns the weights saved in `<checkpoint>/policy` to `policy`'s variables (same names and shapes).
 * @throws Error naming the missing, extra or wrong-shape tensor.
 */
export async function loadPolicyWeights(policy: CausalLM, checkpoint: string): Promise<void> {
  const file = join(checkpoint, POLICY_DIR, WEIGHTS_FILE);
  const { tensors } = await readSafetensors(file, { finite: true });
  const vars = policy.variables();
  for (const [name, v] of vars) {
    const t = tensors.get(name);
    if (!t)
      throw new Error(
        `Trainer: ${file} has no tensor '${name}'; the policy differs from the checkpoint's (see ${join(checkpoint, POLICY_DIR, CONFIG_FILE)}).`,
      );
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      throw new Error(
        `Trainer: ${file}: '${name}' has shape [${t.shape}] but the policy's is [${v.shape}]; the policy differs from the checkpoint's.`,
      );
    }
  }
  for (const name of tensors.keys()) {
    if (!vars.has(name))
      throw new Error(`Trainer: ${file} has tensor '${name}', which the policy does not have.`);
  }
  for (const [name, v] of vars) {
    const t = tensors.get(name)!;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, 'float32')));
  }
}
