/**
 * The P3O-V1 optimizer plugin: Pairwise Proximal Policy Optimization with *separate* clipping (Wu et al. 2023,
 * "Pairwise Proximal Policy Optimization: Harnessing Relative Feedback for LLM Alignment", arXiv 2310.00212;
 * not the 2026 paper of the same acronym). docs/algorithms.md §1: two responses per prompt, one sequence-level reward each,
 * no value function; the update depends on rewards only through `r1 − r2`, so it is invariant to any
 * per-prompt shift of the reward (docs/algorithms.md §1.10).
 *
 * Read top to bottom: the config (defaults from the authors' code, docs/algorithms.md §1.9), what the trainer must collect,
 * the loss call, the plugin object. The update loop itself (epochs of seeded pair shuffles, AdamW with
 * grad-norm clipping and the non-finite skip, checkpointable state) is shared with P3O-V2 and online DPO and
 * lives in `@relign/core` (`PairwiseOptimizer`, docs/algorithms.md §1.8); the options, q and the logged `p3o/*`
 * statistics shared with P3O-V2 are in `@relign/p3o`.
 */
import { definePlugin, PairwiseOptimizer, type PairwiseLoss } from '@relign/core';
import { p3oConfigSchema, type P3OConfig } from '@relign/p3o';
import { p3oV1Loss } from './loss.js';

/**
 * The config: defaults of the authors' code (docs/algorithms.md §1.9; `thwu1/trlx` `examples/hh/p3o_hh.py` and
 * `default_p3o_config`, the "6B" column). P3O-V2 has the same fields and defaults: both are
 * `p3oConfigSchema` of `@relign/p3o`.
 */
export const p3oV1ConfigSchema = p3oConfigSchema;

/**
 * P3O-V1 settings, as declared by {@link p3oV1ConfigSchema}: the shared pairwise settings, ε (each response's
 * ratio ρk = exp(Lk − Lk,old) is clipped PPO-style to `[1 − ε, 1 + ε]`) and c (the other response's detached
 * ratio, the weight of each term, is clamped to `[1/c, c]`, docs/algorithms.md §1.5). β (the KL coefficient) is not here:
 * it comes from the Trainer's KL controller.
 */
export type P3OV1Config = P3OConfig;

/** The loss call: docs/algorithms.md §1.5 with the trainer's β and the configured ε, c. */
function v1Loss(config: P3OV1Config): PairwiseLoss {
  return (input, klCoef) =>
    p3oV1Loss(input, { klCoef, clipRange: config.clipRange, ratioClip: config.ratioClip });
}

/**
 * The P3O-V1 plugin (registry name `p3o-v1`). Rollouts: 2 responses per prompt with reference log-probs. β is
 * `UpdateContext.klCoef`: the Trainer's default fixed controller gives 0.05, the authors' value (docs/algorithms.md §1.2,
 * §1.9); P3O has no adaptive controller.
 */
export const p3oV1Plugin = definePlugin<P3OV1Config>({
  name: 'p3o-v1',
  description:
    'P3O-V1: pairwise proximal policy optimization with separate clipping (Wu et al. 2023, arXiv 2310.00212)',
  configSchema: p3oV1ConfigSchema,
  requirements: () => ({ responsesPerPrompt: 2, referenceLogprobs: true, valueHead: false }),
  create: (context, config) =>
    new PairwiseOptimizer({ name: 'p3o-v1', metricPrefix: 'p3o', context, config, loss: v1Loss(config) }),
});
