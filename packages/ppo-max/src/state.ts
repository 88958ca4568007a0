/**
 * PPO-max's resumable state: the critic's weights, both optimizers' moments and step counts, the shuffle and
 * PPO-ptx streams, the running reward moments and the update counters. `state()` and `load()` round-trip it
 * exactly, so a resumed run continues as the uninterrupted one would.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { PluginState } from '@relign/core';
import {
  rngFromState,
  RunningMoments,
  type AdamW,
  type Rng,
  type RngState,
  type RunningMomentsState,
} from '@relign/tensor';
import type { Critic } from './critic.js';

interface PpoMaxJsonState {
  version: 1;
  updates: number;
  skippedSteps: number;
  rng: RngState;
  ptxRng: RngState;
  rewardMoments: RunningMomentsState;
  policyOptimizerStep: number;
  criticOptimizerStep: number;
}

/** Everything the state holds, as live objects. */
export interface PpoMaxStateParts {
  critic: Critic;
  policyOptimizer: AdamW;
  criticOptimizer: AdamW;
  rng: Rng;
  ptxRng: Rng;
  rewardMoments: RunningMoments;
  updates: number;
  skippedSteps: number;
}

/** The state of `parts` (tensors are new copies, owned by the caller). */
export function saveState(parts: PpoMaxStateParts): PluginState {
  const tensors = new Map<string, tf.Tensor>();
  const p = parts.policyOptimizer.state();
  for (const [k, t] of p.tensors) tensors.set(`policyOptimizer.${k}`, t);
  const c = parts.criticOptimizer.state();
  for (const [k, t] of c.tensors) tensors.set(`criticOptimizer.${k}`, t);
  for (const [k, v] of parts.critic.variables()) tensors.set(`critic.${k}`, v.clone());
  const json: PpoMaxJsonState = {
    version: 1,
    updates: parts.updates,
    skippedSteps: parts.skippedSteps,
    rng: parts.rng.state(),
    ptxRng: parts.ptxRng.state(),
    rewardMoments: parts.rewardMoments.toJSON(),
    policyOptimizerStep: p.step,
    criticOptimizerStep: c.step,
  };
  return { json: json as unknown as Record<string, unknown>, tensors };
}

/** A parsed state: the JSON part as objects, the tensors grouped by owner (names without the prefix). */
export interface ParsedState {
  rng: Rng;
  ptxRng: Rng;
  rewardMoments: RunningMoments;
  updates: number;
  skippedSteps: number;
  policyOptimizer: { step: number; tensors: Map<string, tf.Tensor> };
  criticOptimizer: { step: number; tensors: Map<string, tf.Tensor> };
  critic: Map<string, tf.Tensor>;
}

/**
 * Checks and parses a state from {@link saveState} without changing anything (the caller then assigns it).
 *
 * @throws Error naming `fn` and the field that is missing or wrong.
 */
export function parseState(state: PluginState, fn: string): ParsedState {
  if (
    state === null ||
    typeof state !== 'object' ||
    !(state.tensors instanceof Map) ||
    typeof state.json !== 'object' ||
    state.json === null
  ) {
    throw new Error(`${fn}: expected a state {json, tensors: Map} from state().`);
  }
  const j = state.json as Partial<PpoMaxJsonState>;
  if (j.version !== 1)
    throw new Error(`${fn}: state.json.version must be 1, got ${JSON.stringify(j.version)}.`);
  for (const key of ['updates', 'skippedSteps', 'policyOptimizerStep', 'criticOptimizerStep'] as const) {
    if (!Number.isInteger(j[key]) || (j[key] as number) < 0) {
      throw new Error(`${fn}: state.json.${key} must be an integer >= 0, got ${String(j[key])}.`);
    }
  }
  for (const key of ['rng', 'ptxRng', 'rewardMoments'] as const) {
    if (j[key] === undefined) throw new Error(`${fn}: state.json.${key} is missing.`);
  }
  const groups = {
    policyOptimizer: new Map<string, tf.Tensor>(),
    criticOptimizer: new Map<string, tf.Tensor>(),
    critic: new Map<string, tf.Tensor>(),
  };
  for (const [k, t] of state.tensors) {
    const dot = k.indexOf('.');
    const group = groups[k.slice(0, dot) as keyof typeof groups];
    if (dot < 0 || !group) {
      throw new Error(
        `${fn}: unexpected state tensor '${k}' (expected 'policyOptimizer.*', 'criticOptimizer.*' or 'critic.*').`,
      );
    }
    group.set(k.slice(dot + 1), t);
  }
  return {
    rng: rngFromState(j.rng!),
    ptxRng: rngFromState(j.ptxRng!),
    rewardMoments: RunningMoments.fromJSON(j.rewardMoments!),
    updates: j.updates!,
    skippedSteps: j.skippedSteps!,
    policyOptimizer: { step: j.policyOptimizerStep!, tensors: groups.policyOptimizer },
    criticOptimizer: { step: j.criticOptimizerStep!, tensors: groups.criticOptimizer },
    critic: groups.critic,
  };
}
