/**
 * The PPO-max config: every trick of "Secrets of RLHF in LLMs, Part I" (Zheng et al. 2023) is a switch here.
 * Defaults follow the "paper PPO-max" column of docs/algorithms.md §2.11 where the paper's value is known, the MOSS-RLHF code
 * (`config_ppo.py`) where the paper gives the trick but not its value, and relign's choices otherwise
 * (docs/algorithms.md §7);
 * each field's description names its source. β (the KL coefficient) is not here: it comes from the Trainer's
 * KL controller (`UpdateContext.klCoef`; the paper uses a fixed β ≈ 0.05, docs/algorithms.md §2.1, §2.4).
 */
import {
  booleanField,
  configSchema,
  enumField,
  integerField,
  numberField,
  type InferConfig,
} from '@relign/core';

export const ppoMaxConfigSchema = configSchema({
  lr: numberField({
    default: 5e-7,
    min: 0,
    exclusiveMin: true,
    description:
      'policy AdamW learning rate (paper and MOSS scripts: 5e-7, docs/algorithms.md §2.9; raise it for tiny models)',
  }),
  criticLr: numberField({
    default: 1.65e-6,
    min: 0,
    exclusiveMin: true,
    description: 'critic AdamW learning rate (paper: 1.65e-6; MOSS code 1.5e-6, docs/algorithms.md §2.9)',
  }),
  lrWarmupSteps: integerField({
    default: 0,
    min: 0,
    description:
      'W of the MOSS schedule (warm-up factor max(s/W, 0.1), then sqrt(W/s), docs/algorithms.md §2.9) for both optimizers; ' +
      '0 = constant rates (MOSS: 500 default, 100 in its scripts)',
  }),
  epochs: integerField({
    default: 1,
    min: 1,
    max: 100,
    description:
      'passes over each rollout, a new shuffle each (PPO-max: one pass over a small buffer, docs/algorithms.md §2.9, §2.11)',
  }),
  minibatchSize: integerField({
    default: 32,
    min: 1,
    description: 'responses per optimizer step (paper and MOSS: train batch 32, docs/algorithms.md §2.9)',
  }),
  microBatchSize: integerField({
    default: 0,
    min: 0,
    description:
      'responses per forward/backward pass; gradients of a minibatch are accumulated over its micro-batches ' +
      '(the loss does not depend on the split); 0 = the whole minibatch at once',
  }),
  maxGradNorm: numberField({
    default: 1,
    min: 0,
    exclusiveMin: true,
    description:
      'global gradient-norm clip, applied to the policy and to the critic separately (paper: yes; DeepSpeed 1.0, docs/algorithms.md §2.9)',
  }),
  adamBeta1: numberField({
    default: 0.9,
    min: 0,
    max: 1,
    exclusiveMax: true,
    description: 'AdamW β1, both optimizers (MOSS: 0.9, docs/algorithms.md §2.9)',
  }),
  adamBeta2: numberField({
    default: 0.95,
    min: 0,
    max: 1,
    exclusiveMax: true,
    description: 'AdamW β2, both optimizers (MOSS: 0.95, docs/algorithms.md §2.9)',
  }),
  adamEps: numberField({
    default: 1e-6,
    min: 0,
    exclusiveMin: true,
    description: 'policy AdamW ε (MOSS: 1e-6, docs/algorithms.md §2.9)',
  }),
  criticAdamEps: numberField({
    default: 1e-8,
    min: 0,
    exclusiveMin: true,
    description: 'critic AdamW ε (MOSS: 1e-8, docs/algorithms.md §2.9)',
  }),
  weightDecay: numberField({
    default: 0,
    min: 0,
    description: 'AdamW decoupled weight decay on matrices and embeddings (MOSS: 0, docs/algorithms.md §2.9)',
  }),
  klEstimator: enumField({
    default: 'k1',
    values: ['k1', 'k2', 'k3'],
    description:
      "per-token KL estimator of the penalty −β·k_t (PPO-max, TRL, OpenRLHF: 'k1', docs/algorithms.md §2.4, §4.3)",
  }),
  rewardNorm: enumField({
    default: 'normalize',
    values: ['none', 'scale', 'normalize'],
    description:
      "score processing with running moments updated before use (docs/algorithms.md §2.3): 'scale' r/σ, 'normalize' (r − μ)/σ " +
      "(paper PPO-max: both, i.e. 'normalize'; MOSS scripts: 'scale'), 'none'",
  }),
  rewardClip: numberField({
    default: 10,
    min: 0,
    description:
      'clip the processed score to [−δ, δ]; 0 = off (paper: yes, δ not reported; MOSS reward_clip 10, docs/algorithms.md §2.3)',
  }),
  gamma: numberField({
    default: 1,
    min: 0,
    max: 1,
    description: 'GAE discount γ (PPO-max: 1, docs/algorithms.md §2.5)',
  }),
  lambda: numberField({
    default: 0.95,
    min: 0,
    max: 1,
    description:
      'GAE λ (MOSS code and scripts: 0.95; a summary reports 0.9 for the paper, docs/algorithms.md §2.5)',
  }),
  advantageWhitening: enumField({
    default: 'minibatch',
    values: ['minibatch', 'rollout', 'none'],
    description:
      "advantage normalisation (A − μ)/sqrt(σ² + 1e-6), biased σ², over each minibatch's tokens (MOSS, docs/algorithms.md §2.6; " +
      "paper: yes) or over the whole rollout (TRL/OpenRLHF, docs/algorithms.md §4.5); 'none' = off",
  }),
  advantageClip: numberField({
    default: 0,
    min: 0,
    description:
      'clip whitened advantages to [−c, c]; 0 = off (docs/algorithms.md §2.6 [CHOICE]: off; MOSS advantage_clip 0.5 when on)',
  }),
  policyClip: booleanField({
    default: true,
    description: 'clipped policy surrogate (paper: yes, docs/algorithms.md §2.7 use_policy_loss_clip)',
  }),
  clipRange: numberField({
    default: 0.2,
    min: 0,
    exclusiveMin: true,
    description: 'policy ratio clip ε (paper and MOSS: 0.2, docs/algorithms.md §2.7)',
  }),
  valueClip: booleanField({
    default: true,
    description: 'clipped value loss (paper: yes, docs/algorithms.md §2.7 use_critic_loss_clip)',
  }),
  valueClipRange: numberField({
    default: 0.2,
    min: 0,
    exclusiveMin: true,
    description: 'value clip ε_v (MOSS: 0.2, docs/algorithms.md §2.7)',
  }),
  vfCoef: numberField({
    default: 1,
    min: 0,
    exclusiveMin: true,
    description: 'weight of the value loss (MOSS: 1.0, docs/algorithms.md §2.7)',
  }),
  entropyCoef: numberField({
    default: 0,
    min: 0,
    description:
      'entropy bonus −c·(token-mean entropy) in the policy loss; 0 = off (paper: not kept, docs/algorithms.md §2.1, §2.7)',
  }),
  ptxCoef: numberField({
    default: 0,
    min: 0,
    description:
      'PPO-ptx: + λ·(token-mean NLL of the policy on SFT examples, one per response); 0 = off (paper: yes, λ not ' +
      'reported; MOSS default 0, docs/algorithms.md §2.7 [CHOICE]); needs ptxExamples (createPpoMaxPlugin)',
  }),
  criticInit: enumField({
    default: 'reward-model',
    values: ['reward-model', 'policy'],
    description:
      "'reward-model': the critic is a copy of the reward model given to createPpoMaxPlugin (paper, docs/algorithms.md §2.8); " +
      "'policy': a copy of the policy with a new value head",
  }),
  criticWarmupIterations: integerField({
    default: 0,
    min: 0,
    description:
      'critic pre-training: the first K updates train only the critic (paper: yes, length not reported; docs/algorithms.md §2.8 ' +
      '[CHOICE]); 0 = off',
  }),
});

/** The PPO-max settings, as declared by {@link ppoMaxConfigSchema}. */
export type PpoMaxConfig = InferConfig<typeof ppoMaxConfigSchema>;
