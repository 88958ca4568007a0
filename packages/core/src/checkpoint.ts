/**
 * Trainer checkpoints: everything a resumed run needs to continue bit-identically (same backend, same seed).
 * The folder format (atomic save, `latest.json`, versioned `trainer_state.json`, keeping the newest N) is
 * `@relign/tensor`'s `writeCheckpointDir`, with kind "trainer"; a checkpoint directory holds
 * ```
 * policy/config.json, policy/model.safetensors   policy weights (CausalLM.save: loadable with fromPretrained)
 *   or, for a LoRA policy, policy/adapter_config.json, policy/adapter_model.safetensors (a PEFT adapter)
 * plugin.json, plugin.safetensors                 the plugin's state() (optimizer moments, RNG, statistics)
 * buffer/                                         the replay buffer (ReplayBuffer.save)
 * trainer_state.json                              counters, trainer RNG, KL controller, prompt position, ...
 * ```
 * Checkpoints of earlier relign versions (format version 1) still load.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  ADAPTER_CONFIG_FILE,
  CONFIG_FILE,
  WEIGHTS_FILE,
  loadLoraWeights,
  loraAdapterOf,
  saveLoraAdapter,
  type CausalLM,
} from '@relign/lm';
import { ReplayBuffer } from '@relign/rollout';
import {
  readCheckpointState,
  readSafetensors,
  writeCheckpointDir,
  writeFileAtomic,
  type RngState,
  nodeFs,
  nodePath,
} from '@relign/tensor';
import type { KlControllerState } from './kl.js';
import type { SerializedPluginState } from './state-io.js';
import { validateTrainerState } from './trainer-state.js';

// File access through @relign/tensor: node:fs in Node.js, a stand-in that rejects in a browser bundle.
const { readFile } = nodeFs;
const { join } = nodePath;

export { latestCheckpoint, LATEST_FILE, TRAINER_STATE_FILE } from '@relign/tensor';
export const PLUGIN_JSON_FILE = 'plugin.json';
export const PLUGIN_TENSORS_FILE = 'plugin.safetensors';
export const POLICY_DIR = 'policy';
export const BUFFER_DIR = 'buffer';
/** The trainer kind of the Trainer's checkpoints (`trainer_state.json`). */
export const TRAINER_CHECKPOINT_KIND = 'trainer';
const STATE_FORMAT = 'relign-trainer-state';

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

/**
 * Writes a checkpoint for iteration `state.step` into `dir` (created if needed) and points `latest.json` at
 * it; then removes all but the newest `keep` checkpoints (see `writeCheckpointDir`).
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
  try {
    return await writeCheckpointDir(
      dir,
      {
        kind: TRAINER_CHECKPOINT_KIND,
        step: parts.state.step,
        state: parts.state,
        write: async (tmp) => {
          // A LoRA policy's base never changes: only its adapter is saved (the run's base is passed on resume).
          const adapter = loraAdapterOf(parts.policy);
          if (adapter) await saveLoraAdapter(adapter, join(tmp, POLICY_DIR));
          else await parts.policy.save(join(tmp, POLICY_DIR));
          await writeFileAtomic(join(tmp, PLUGIN_JSON_FILE), parts.plugin.json);
          await writeFileAtomic(join(tmp, PLUGIN_TENSORS_FILE), parts.plugin.tensors);
          await parts.buffer.save(join(tmp, BUFFER_DIR));
        },
      },
      { keep: Math.max(1, keep) },
    );
  } catch (err) {
    throw new Error(`Trainer: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads a checkpoint directory (a `step-N` directory); the policy weights are applied by
 * {@link loadPolicyWeights}. With `vocabSize` (the policy's), the replay buffer's token ids are checked against it.
 */
export async function readCheckpoint(
  path: string,
  options: { vocabSize?: number } = {},
): Promise<LoadedCheckpoint> {
  const read = await readCheckpointState(path, { kind: TRAINER_CHECKPOINT_KIND }).catch((err: Error) => {
    throw new Error(`Trainer: ${err.message}`, { cause: err });
  });
  // The state keeps its own format and version (1) inside the folder format's envelope.
  const raw = read.state as Partial<TrainerCheckpointState> | null;
  if (raw?.format !== STATE_FORMAT || raw.version !== 1) {
    throw new Error(`Trainer: ${read.file} is not a version-1 trainer state ("format": "${STATE_FORMAT}").`);
  }
  const state = validateTrainerState(raw, read.file);
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
 * Assigns the weights saved in `<checkpoint>/policy` to `policy`'s variables (same names and shapes), or
 * for a LoRA policy the saved adapter to its adapter's A and B.
 * @throws Error naming the missing, extra or wrong-shape tensor.
 */
export async function loadPolicyWeights(policy: CausalLM, checkpoint: string): Promise<void> {
  const adapter = loraAdapterOf(policy);
  const hasAdapter = await readFile(join(checkpoint, POLICY_DIR, ADAPTER_CONFIG_FILE)).then(
    () => true,
    () => false,
  );
  if (adapter || hasAdapter) {
    if (!adapter || !hasAdapter) {
      throw new Error(
        `Trainer: checkpoint ${checkpoint} ${hasAdapter ? 'holds a LoRA adapter but the policy has none (attachLora it as in the original run)' : 'holds full policy weights but the policy has a LoRA adapter'}.`,
      );
    }
    await loadLoraWeights(adapter, join(checkpoint, POLICY_DIR)).catch((err: Error) => {
      throw new Error(`Trainer: ${err.message}`, { cause: err });
    });
    return;
  }
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
