/**
 * The optimizers the app knows without a registry lookup (its dependencies), and resolution of any other
 * installed plugin by name (`resolvePlugin` of @relign/core: `@relign/<name>`, then `relign-plugin-<name>`).
 */
import { resolvePlugin, type AnyAlgorithmPlugin } from '@relign/core';
import dpoPlugin from '@relign/dpo';
import grpoPlugin from '@relign/grpo';
import p3oV1Plugin from '@relign/p3o-v1';
import p3oV2Plugin from '@relign/p3o-v2';
import { createPpoMaxPlugin, ppoMaxPlugin } from '@relign/ppo-max';
import type { RewardModel } from '@relign/reward-model';
import rlooPlugin from '@relign/rloo';

/** The first-party plugins by name (PPO-max without a reward model attached). */
export const FIRST_PARTY_PLUGINS: Readonly<Record<string, AnyAlgorithmPlugin>> = {
  'ppo-max': ppoMaxPlugin,
  dpo: dpoPlugin,
  'p3o-v1': p3oV1Plugin,
  'p3o-v2': p3oV2Plugin,
  grpo: grpoPlugin,
  rloo: rlooPlugin,
};

/**
 * The plugin to train with. PPO-max gets the reward model for its critic (the paper's initialisation,
 * docs/algorithms.md §2.8) unless its config asks for `criticInit: 'policy'`; other names are first-party plugins or
 * installed packages.
 */
export async function pluginFor(name: string, rewardModel?: RewardModel): Promise<AnyAlgorithmPlugin> {
  if (name === 'ppo-max' && rewardModel) {
    return createPpoMaxPlugin({ rewardModel });
  }
  return FIRST_PARTY_PLUGINS[name] ?? (await resolvePlugin(name));
}
