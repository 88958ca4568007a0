/**
 * The P3O-V2 optimizer plugin: Pairwise Proximal Policy Optimization with *joint* clipping (Wu et al. 2023,
 * "Pairwise Proximal Policy Optimization: Harnessing Relative Feedback for LLM Alignment", arXiv 2310.00212;
 * not the 2026 paper of the same acronym). docs/algorithms.md §1: two responses per prompt, one sequence-level reward each,
 * no value function; the update depends on rewards only through `r1 − r2`, so it is invariant to any
 * per-prompt shift of the reward (docs/algorithms.md §1.10).
 *
 * Read top to bottom: the config (defaults from the authors' code, docs/algorithms.md §1.9), what the trainer must collect,
 * the loss call, the plugin object. The update loop itself (epochs of seeded pair shuffles, AdamW with
 * grad-norm clipping and the non-finite skip, checkpointable state) is shared with P3O-V1 and online DPO and
 * lives in `@relign/core` (`PairwiseOptimizer`, docs/algorithms.md §1.8); the options, q and the logged `p3o/*`
 * statistics shared with P3O-V1 are in `@relign/p3o`.
 */
import { definePlugin, PairwiseOptimizer, type PairwiseLoss } from '@relign/core';
import { p3oConfigSchema, type P3OConfig } from '@relign/p3o';
import { p3oV2Loss } from './loss.js';

/**
 * The config: defaults of the authors' code (docs/algorithms.md §1.9; `thwu1/trlx` `examples/hh/p3o_hh.py` and
 * `default_p3o_config`, the "6B" column). P3O-V1 has the same fields and defaults: both are
 * `p3oConfigSchema` of `@relign/p3o`.
 */
export const p3oV2ConfigSchema = p3oConfigSchema;

/**
 * P3O-V2 settings, as declared by {@link p3oV2ConfigSchema}: the shared pairwise settings, ε (the joint clip of
 * the pair log-ratio `d = L1 − L2` to `d_old ± ε`) and c (the detached joint importance weight ρ1ρ2 is clamped
 * to `[1/c, c]`, docs/algorithms.md §1.4). β (the KL coefficient) is not here:
 * it comes from the Trainer's KL controller.
 */
export type P3OV2Config = P3OConfig;

/** The loss call: docs/algorithms.md §1.4 with the trainer's β and the configured ε, c. */
function v2Loss(config: P3OV2Config): PairwiseLoss {
  return (input, klCoef) =>
    p3oV2Loss(input, { klCoef, clipRange: config.clipRange, ratioClip: config.ratioClip });
}

/**
 * The P3O-V2 plugin (registry name `p3o-v2`). Rollouts: 2 responses per prompt with reference log-probs. β is
 * `UpdateContext.klCoef`: the Trainer's default fixed controller gives 0.05, the authors' value (docs/algorithms.md §1.2,
 * §1.9); P3O has no adaptive controller.
 */
export const p3oV2Plugin = definePlugin<P3OV2Config>({
  name: 'p3o-v2',
  description:
    'P3O-V2: pairwise proximal policy optimization with joint clipping (Wu et al. 2023, arXiv 2310.00212)',
  configSchema: p3oV2ConfigSchema,
  requirements: () => ({ responsesPerPrompt: 2, referenceLogprobs: true, valueHead: false }),
  create: (context, config) =>
    new PairwiseOptimizer({ name: 'p3o-v2', metricPrefix: 'p3o', context, config, loss: v2Loss(config) }),
});
