/**
 * LoRA in the app (config section `lora`). With `lora.enabled` the sft and train stages attach adapters to
 * the policy (@relign/lm's `attachLora`: the base weights are frozen, the optimizer trains A and B) and the
 * Trainer's reference is the base with adapters disabled (no second copy of the weights).
 *
 * Saved policy folders stay plain model folders: `model.safetensors` holds the UNCHANGED base weights and
 * `adapter/` the adapter in PEFT's layout (`adapter_config.json`, `adapter_model.safetensors`), so Python
 * loads it with `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(dir), dir + "/adapter")` and
 * merges it with `.merge_and_unload()`. relign merges it on load ({@link mergeSavedAdapter}): the next stage
 * (or `relign eval`) sees the adapted model, and a LoRA RL run on a LoRA SFT model gets a fresh adapter over
 * the merged SFT weights, whose base is then its reference — TRL's recipe.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  ADAPTER_CONFIG_FILE,
  attachLora,
  detachLora,
  loadLoraAdapter,
  loraAdapterOf,
  mergeAndUnload,
  saveLoraAdapter,
  type CausalLM,
  type LoraAdapter,
} from '@relign/lm';
import type { RelignConfig } from './config/schema.js';

/** The sub-folder of a saved policy that holds its PEFT adapter. */
export const ADAPTER_DIR = 'adapter';

/**
 * Attaches the configured adapters to `model` when `lora.enabled` (returns undefined otherwise).
 * @param base what the adapter's `base_model_name_or_path` records (the folder the base weights are in).
 */
export function attachConfiguredLora(
  model: CausalLM,
  cfg: RelignConfig,
  seed: string,
  base = '',
): LoraAdapter | undefined {
  const l = cfg.lora;
  if (!l.enabled) return undefined;
  return attachLora(model, {
    r: l.r,
    loraAlpha: l.alpha,
    loraDropout: l.dropout,
    ...(l.targetModules.length > 0 ? { targetModules: l.targetModules } : {}),
    seed,
    baseModelNameOrPath: base,
  });
}

/** Writes `dir/adapter/` when `model` carries LoRA adapters (the base weights are saved by `model.save`). */
export async function saveAdapterIfAny(model: CausalLM, dir: string): Promise<void> {
  const adapter = loraAdapterOf(model);
  if (adapter) await saveLoraAdapter(adapter, join(dir, ADAPTER_DIR));
}

/**
 * Applies a saved policy's adapter (`dir/adapter/`) to the freshly loaded base weights: loads it, merges it
 * into the weights and removes it, leaving the weights trainable as asked. A folder without one is untouched.
 * @returns whether an adapter was merged.
 */
export async function mergeSavedAdapter(model: CausalLM, dir: string, trainable: boolean): Promise<boolean> {
  const adapterDir = join(dir, ADAPTER_DIR);
  if (!existsSync(join(adapterDir, ADAPTER_CONFIG_FILE))) return false;
  await loadLoraAdapter(model, adapterDir);
  mergeAndUnload(model);
  model.setTrainable(trainable);
  return true;
}

/** Frees a model and the adapter attached to it (`model.dispose()` leaves a hook's variables alone). */
export function disposeWithAdapter(model: CausalLM): void {
  if (loraAdapterOf(model)) detachLora(model);
  model.dispose();
}
