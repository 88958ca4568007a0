/**
 * @relign/ppo-max — PPO with the recipe of "Secrets of RLHF in Large Language Models, Part I: PPO" (Zheng et al.
 * 2023, arXiv 2307.04964) as a relign optimizer plugin. The default export is the plugin (no reward model
 * attached: use `criticInit: 'policy'`, or `createPpoMaxPlugin({ rewardModel })` for the paper's critic); the
 * pure PPO functions (per-token rewards, GAE, whitening, losses) are exported for checks and reuse.
 */
import { ppoMaxPlugin } from './plugin.js';

export default ppoMaxPlugin;
export { ppoMaxPlugin, createPpoMaxPlugin, type PpoMaxOptions, type PpoMaxContext } from './plugin.js';
export { ppoMaxConfigSchema, type PpoMaxConfig } from './config.js';
export { Critic, type CriticSource } from './critic.js';
export { gae, type GaeOptions, type GaeResult } from './gae.js';
export {
  tokenRewards,
  type TokenRewardsInput,
  type TokenRewardsOptions,
  type TokenRewardsResult,
} from './token-rewards.js';
export {
  ppoPolicyLoss,
  type PolicyLossInput,
  type PolicyLossOptions,
  type PolicyLossResult,
} from './policy-loss.js';
export { valueLoss, type ValueLossInput, type ValueLossOptions, type ValueLossResult } from './value-loss.js';
export { whitenAdvantages, type WhitenAdvantagesOptions } from './whiten.js';
export { mossLrFactor, mossLearningRate } from './schedule.js';
/** The policy's log-probs and entropies in one pass (now @relign/rollout's `computeLogprobsAndEntropy`). */
export { computeLogprobsAndEntropy as logprobsAndEntropy } from '@relign/rollout';
export { gaeOnHost } from './gae.js';
export { selectRows } from './rows.js';
