/**
 * The state most optimizer plugins keep between updates: their AdamW moments, their RNG (minibatch shuffles)
 * and two counters. One format for every such plugin (GRPO, RLOO, the REINFORCE example), so that a plugin's
 * `state()`/`load()` is two lines and its checkpoints read the same way: JSON
 * `{ optimizerStep, rng, updates, skipped }` and tensors `optimizer.<name>`.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { rngFromState, type AdamW, type Rng, type RngState } from '@relign/tensor';
import type { PluginState } from './plugin.js';

/** Updates run and optimizer steps skipped (non-finite or exploded) so far. */
export interface PluginCounters {
  updates: number;
  skipped: number;
}

const PREFIX = 'optimizer.';

/** A copy of an optimizer plugin's state (tensors owned by the caller, as {@link PluginState} says). */
export function optimizerPluginState(optimizer: AdamW, rng: Rng, counters: PluginCounters): PluginState {
  const { step, tensors } = optimizer.state();
  const out = new Map<string, tf.Tensor>();
  for (const [k, t] of tensors) out.set(`${PREFIX}${k}`, t);
  return {
    json: { optimizerStep: step, rng: rng.state(), updates: counters.updates, skipped: counters.skipped },
    tensors: out,
  };
}

/**
 * Restores {@link optimizerPluginState} into `optimizer` and returns the RNG and counters. `name` (the plugin's)
 * prefixes the errors for a state that is not of this format.
 */
export function loadOptimizerPluginState(
  name: string,
  state: PluginState,
  optimizer: AdamW,
): PluginCounters & { rng: Rng } {
  const j = state.json as Record<string, unknown>;
  for (const key of ['optimizerStep', 'updates', 'skipped'] as const) {
    if (!Number.isInteger(j[key]) || (j[key] as number) < 0) {
      throw new Error(
        `${name}.load: state.json.${key} must be an integer >= 0 (got ${JSON.stringify(j[key])}).`,
      );
    }
  }
  if (j.rng === null || typeof j.rng !== 'object') {
    throw new Error(
      `${name}.load: state.json.rng must be an RNG state object (got ${JSON.stringify(j.rng)}).`,
    );
  }
  const tensors = new Map<string, tf.Tensor>();
  for (const [k, t] of state.tensors) {
    if (!k.startsWith(PREFIX)) throw new Error(`${name}.load: unexpected state tensor '${k}'.`);
    tensors.set(k.slice(PREFIX.length), t);
  }
  optimizer.load({ step: j.optimizerStep as number, tensors });
  return {
    rng: rngFromState(j.rng as RngState),
    updates: j.updates as number,
    skipped: j.skipped as number,
  };
}
