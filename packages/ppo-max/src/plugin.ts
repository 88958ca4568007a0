/**
 * The PPO-max optimizer plugin: PPO for language models with the recipe of "Secrets of RLHF in Large Language
 * Models, Part I: PPO" (Zheng et al. 2023, arXiv 2307.04964; code OpenLMLab/MOSS-RLHF), docs/algorithms.md §2, on the
 * reference LLM-PPO of docs/algorithms.md §4 (Convention A, log-probs at the sampling temperature, token-mean losses).
 *
 * One `update(batch, {klCoef})` is one PPO iteration's optimisation phase (docs/algorithms.md §4.6b):
 *
 *     scores  ← normalise/clip the raw scores with running moments, updated with this batch first   (§2.3)
 *     V_old   ← critic(batch)                                         (no grad, at the response positions)
 *     r_t     ← −β·k(ℓ_old, ℓ_ref) at every token, + score on the last real token                  (§2.4, §4.4)
 *     A, R    ← GAE(r, V_old; γ, λ)                                                                 (§2.5, §4.5)
 *     for epoch in 1..epochs: shuffle the responses (seeded); for each minibatch:
 *       Â      ← whiten A over the minibatch (or the rollout), optionally clip                          (§2.6)
 *       for each micro-batch (gradients accumulated; losses are token means over the whole minibatch):
 *         policy: clipped surrogate [− c_H·entropy] [+ λ_ptx·NLL on SFT examples]               (§2.7, §4.6)
 *         critic: c_vf · clipped value loss                                                        (§2.7)
 *       AdamW step on the policy (unless the critic is still warming up, §2.8) and on the critic, each with
 *       global-norm clipping; a non-finite loss or gradient, or an update beyond the guard, skips both
 *
 * The critic (an LM backbone with a scalar value head, docs/algorithms.md §2.8) belongs to the plugin: a copy of the reward
 * model passed to {@link createPpoMaxPlugin} (the paper's choice, config `criticInit: 'reward-model'`) or of
 * the policy with a new head (`criticInit: 'policy'`). It has its own optimizer and learning rate, and its
 * weights, the two optimizers' moments, the shuffle streams and the running reward statistics are all in
 * `state()`.
 *
 * Where it is: `ppo-max.ts` (the instance), `rollout-data.ts` (values, rewards, GAE, advantages),
 * `update-step.ts` (one minibatch step), `terms.ts` (the losses of a micro-batch), `state.ts` (resume).
 */
import { definePlugin, type AlgorithmPlugin, type PluginContext } from '@relign/core';
import type { TokenizedExample } from '@relign/lm';
import { NAME } from './batch-checks.js';
import { ppoMaxConfigSchema, type PpoMaxConfig } from './config.js';
import type { CriticSource } from './critic.js';
import { PpoMax } from './ppo-max.js';

/**
 * What PPO-max needs beyond a config (objects, not settings), bound with {@link createPpoMaxPlugin}. In a
 * Trainer, prefer its `resources: { rewardModel, sftExamples }` option with the plain plugin: PPO-max
 * declares them in `requirements().resources` and receives them in `context.resources`.
 */
export interface PpoMaxOptions {
  /**
   * The reward model the critic is copied from (`criticInit: 'reward-model'`, docs/algorithms.md §2.8): a `RewardModel` of
   * @relign/reward-model, or any `{ backbone: CausalLM, head: ScalarHead }`. The plugin copies it at `create`;
   * the reward model itself is never changed. Its vocabulary must be the policy's.
   */
  rewardModel?: CriticSource;
  /**
   * SFT / pretraining examples for PPO-ptx (`ptxCoef > 0`, docs/algorithms.md §2.7): tokenized examples of @relign/lm
   * (`tokenizePromptCompletion`); the NLL counts completion tokens (`promptLength` onwards; all tokens but the
   * first when `promptLength` is 0). One example is drawn (seeded, with replacement) per response of each
   * minibatch (MOSS `ppo_pretrain_batch_size_ratio = 1`).
   */
  ptxExamples?: readonly TokenizedExample[];
  /** Padding id for batching `ptxExamples` (any valid id; masks come from lengths). Default 0. */
  ptxPadId?: number;
}

/**
 * A plugin context with the {@link PpoMaxOptions} (for direct callers of `plugin.create`). Prefer
 * `context.resources` (`{ rewardModel, sftExamples }`), which `createInstance` checks.
 */
export interface PpoMaxContext extends PluginContext, PpoMaxOptions {}

/**
 * A PPO-max plugin bound to a reward model (for the critic) and/or SFT examples (for PPO-ptx). Register it
 * (`registerPlugin`) or pass it to the Trainer as `plugin`. What the create context brings (`resources`,
 * then fields of the same name) overrides these.
 */
export function createPpoMaxPlugin(options: PpoMaxOptions = {}): AlgorithmPlugin<PpoMaxConfig> {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(
      'createPpoMaxPlugin: options must be an object { rewardModel?, ptxExamples?, ptxPadId? }.',
    );
  }
  for (const key of Object.keys(options)) {
    if (!['rewardModel', 'ptxExamples', 'ptxPadId'].includes(key)) {
      throw new Error(
        `createPpoMaxPlugin: unknown option '${key}'; the options are rewardModel, ptxExamples, ptxPadId.`,
      );
    }
  }
  return definePlugin<PpoMaxConfig>({
    name: NAME,
    description: 'PPO-max: PPO with the "Secrets of RLHF" recipe (Zheng et al. 2023, arXiv 2307.04964)',
    configSchema: ppoMaxConfigSchema,
    // The reward model and SFT examples are resources: required from the Trainer (`resources` option) when the
    // config needs them and this plugin was not bound to them.
    requirements: (config) => ({
      responsesPerPrompt: 1,
      referenceLogprobs: true,
      valueHead: true,
      resources: {
        rewardModel:
          config.criticInit === 'reward-model' && !options.rewardModel
            ? "criticInit 'reward-model', the default: the paper initialises the critic from the reward model, " +
              "docs/algorithms.md §2.8; or set criticInit: 'policy' to start the critic from the policy"
            : false,
        sftExamples:
          config.ptxCoef > 0 && !options.ptxExamples
            ? `ptxCoef = ${config.ptxCoef} (PPO-ptx, docs/algorithms.md §2.7) trains on SFT examples (the ptxExamples); or set ptxCoef: 0`
            : false,
      },
    }),
    create: (context, config) => {
      const ctx = context as PpoMaxContext;
      return new PpoMax(
        {
          ...ctx,
          rewardModel: ctx.resources?.rewardModel ?? ctx.rewardModel ?? options.rewardModel,
          ptxExamples: ctx.resources?.sftExamples ?? ctx.ptxExamples ?? options.ptxExamples,
          ptxPadId: ctx.ptxPadId ?? options.ptxPadId,
        },
        config,
      );
    },
  });
}

/** The plugin with no reward model or SFT data attached (use `criticInit: 'policy'`, or {@link createPpoMaxPlugin}). */
export const ppoMaxPlugin = createPpoMaxPlugin();
