/**
 * Attaching LoRA adapters to a {@link CausalLM} through its projection hook, the base model of a LoRA
 * policy (adapters off, same variables: the reference of a LoRA run), and merging for export.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../model/index.js';
import { LoraAdapter, type LoraModuleSpec } from './adapter.js';
import {
  CONV1D_MODULES,
  DEFAULT_TARGETS,
  isTargeted,
  resolveLoraOptions,
  type LoraOptions,
} from './config.js';

/** Embedding tables: 2-D weights that are not linear modules, so never adapted. */
const EMBEDDINGS = new Set(['wte', 'wpe', 'embed_tokens', 'model.embed_tokens']);

/** Whether the model uses GPT-2's module names (and so its Conv1D layout). */
function isGpt2Layout(vars: ReadonlyMap<string, tf.Variable>): boolean {
  for (const name of vars.keys()) if (/(^|\.)c_attn\.weight$/.test(name)) return true;
  return false;
}

/** The linear modules of `model` that `targets` selects, in parameter order. */
export function findLoraModules(model: CausalLM, targets: readonly string[] | string): LoraModuleSpec[] {
  const vars = model.variables();
  const gpt2 = isGpt2Layout(vars);
  const out: LoraModuleSpec[] = [];
  for (const [param, v] of vars) {
    if (!param.endsWith('.weight') || v.rank !== 2) continue;
    const name = param.slice(0, -'.weight'.length);
    if (EMBEDDINGS.has(name) || !isTargeted(name, targets)) continue;
    const last = name.slice(name.lastIndexOf('.') + 1);
    const fanInFanOut = gpt2 && CONV1D_MODULES.has(last);
    const [d0, d1] = v.shape as [number, number];
    out.push(
      fanInFanOut
        ? { name, inFeatures: d0, outFeatures: d1, fanInFanOut }
        : { name, inFeatures: d1, outFeatures: d0, fanInFanOut },
    );
  }
  return out;
}

/**
 * Adds LoRA adapters to `model` (in place, through `setProjectionHook`) and freezes its own weights: from
 * then on `model.trainableVariables()` is the adapters' A and B, which is what every optimizer plugin
 * trains. The adapted model starts equal to the base (B = 0).
 *
 * @returns the adapter (also `loraAdapterOf(model)`); free it with {@link detachLora} or {@link mergeAndUnload}.
 * @throws Error when the model already has a projection hook or no module matches `targetModules`.
 */
export function attachLora(model: CausalLM, options: LoraOptions = {}): LoraAdapter {
  if (model.projectionHook !== null) {
    throw new Error(
      'attachLora: the model already has a projection hook (an adapter); detachLora(model) or mergeAndUnload(model) first.',
    );
  }
  const defaults = isGpt2Layout(model.variables()) ? DEFAULT_TARGETS.gpt2 : DEFAULT_TARGETS.llama;
  const config = resolveLoraOptions(options, defaults);
  const adapter = new LoraAdapter(findLoraModules(model, config.targetModules), config);
  model.setTrainable(false);
  model.setProjectionHook(adapter);
  return adapter;
}

/** The LoRA adapter attached to `model`, or undefined. */
export function loraAdapterOf(model: CausalLM): LoraAdapter | undefined {
  const hook = model.projectionHook;
  return hook instanceof LoraAdapter ? hook : undefined;
}

function requireAdapter(model: CausalLM, what: string): LoraAdapter {
  const adapter = loraAdapterOf(model);
  if (adapter === undefined || adapter.isDisposed) {
    throw new Error(`${what}: the model has no LoRA adapter (attachLora or loadLoraAdapter first).`);
  }
  return adapter;
}

/**
 * The base model under a LoRA model: a view whose `forward`/`forwardHidden` run with the adapters disabled
 * and which shares the model's variables (no copy), as TRL uses a PEFT model's base as the reference.
 * It has no trainable variables; `dispose()` on it does nothing (the weights are the LoRA model's), and it
 * refuses `setTrainable` / `setProjectionHook`, which would change the LoRA model.
 */
export function loraBaseModel(model: CausalLM): CausalLM {
  const adapter = requireAdapter(model, 'loraBaseModel');
  const overrides: Partial<Record<keyof CausalLM, unknown>> = {
    forward: (...args: Parameters<CausalLM['forward']>) =>
      adapter.withAdaptersDisabled(() => model.forward(...args)),
    forwardHidden: (...args: Parameters<CausalLM['forwardHidden']>) =>
      adapter.withAdaptersDisabled(() => model.forwardHidden(...args)),
    trainableVariables: () => new Map(),
    dispose: () => undefined,
    setTrainable: () => {
      throw new Error('loraBaseModel: the base of a LoRA model is frozen; it cannot be made trainable.');
    },
    setProjectionHook: () => {
      throw new Error('loraBaseModel: set projection hooks on the LoRA model itself, not on its base view.');
    },
  };
  return new Proxy(model, {
    get(target, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof CausalLM];
      // Bound to the model itself so its (possibly #private) fields resolve.
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
    set() {
      throw new Error('loraBaseModel: the base view is read-only.');
    },
  });
}

/** Removes and frees the adapter of `model` (the base weights are unchanged and stay frozen). */
export function detachLora(model: CausalLM): void {
  const adapter = requireAdapter(model, 'detachLora');
  model.setProjectionHook(null);
  adapter.dispose();
}

/**
 * Merges the adapter into the base weights in place (`W += (alpha / r) * B A`, transposed for GPT-2's
 * Conv1D [in, out] weights), then removes and frees it: the model computes the adapted function with no
 * hook and `model.save(dir)` writes it in the normal layout. The weights stay frozen (`setTrainable(true)`
 * to train them). A {@link loraBaseModel} view of the model sees the merged weights afterwards.
 */
export function mergeAndUnload(model: CausalLM): CausalLM {
  const adapter = requireAdapter(model, 'mergeAndUnload');
  const vars = model.variables();
  const merged = adapter.mergedWeights((name) => vars.get(name));
  for (const [name, w] of merged) {
    vars.get(name)!.assign(w);
    w.dispose();
  }
  model.setProjectionHook(null);
  adapter.dispose();
  return model;
}
