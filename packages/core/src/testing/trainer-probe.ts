/**
 * A short Trainer run of a plugin on the conformance suite's tiny model, prompts and reward, for tests of what
 * the Trainer hands plugins: log-probs under truncated sampling (top-k/top-p, docs/algorithms.md §4.2) and which rows are new
 * when the replay buffer holds more than one iteration (`bufferCapacity > promptsPerIteration`).
 */
import { CausalLM } from '@relign/lm';
import type { GenerationOptions } from '../collect.js';
import type { AlgorithmPlugin, Metrics } from '../plugin.js';
import { disposePluginState } from '../state-io.js';
import { Trainer } from '../trainer.js';
import { CONFORMANCE_DEFAULTS, countLowIdsReward } from './conformance.js';

export interface TrainerProbeOptions {
  /** Plugin config. */
  config: Record<string, unknown>;
  /** Iterations to run. */
  iterations: number;
  /** Sampling overrides (default: the conformance suite's: 6 new tokens, τ = 1, stop token 0). */
  generation?: Partial<GenerationOptions>;
  /** Prompts per iteration (default 2). */
  promptsPerIteration?: number;
  /** Replay-buffer capacity in groups (default: `promptsPerIteration`). */
  bufferCapacity?: number;
}

/**
 * Runs `plugin` in a Trainer (fixed β 0.05, seed 1) from the conformance suite's model.
 * @returns each iteration's metrics and the plugin's `state().json` at the end.
 */
export async function trainerProbe(
  plugin: AlgorithmPlugin,
  options: TrainerProbeOptions,
): Promise<{ metrics: Metrics[]; state: Record<string, unknown> }> {
  const policy = CausalLM.create(CONFORMANCE_DEFAULTS.model, CONFORMANCE_DEFAULTS.modelSeed);
  const metrics: Metrics[] = [];
  const d = CONFORMANCE_DEFAULTS.generation;
  const trainer = new Trainer({
    policy,
    prompts: CONFORMANCE_DEFAULTS.prompts,
    reward: countLowIdsReward(),
    plugin,
    pluginConfig: options.config,
    kl: { kind: 'fixed', value: 0.05 },
    generation: { ...d, stopTokenIds: [...d.stopTokenIds], ...options.generation },
    promptsPerIteration: options.promptsPerIteration ?? 2,
    ...(options.bufferCapacity ? { bufferCapacity: options.bufferCapacity } : {}),
    iterations: options.iterations,
    seed: 1,
    onMetrics: (m) => metrics.push(m),
  });
  try {
    await trainer.train();
    const state = trainer.algorithm.state();
    disposePluginState(state);
    return { metrics, state: state.json };
  } finally {
    trainer.dispose();
    policy.dispose();
  }
}
