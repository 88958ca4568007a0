/**
 * The settings of the pairwise optimizer loop ({@link PairwiseOptimizer} of `./optimizer-loop.ts`), shared by
 * every pairwise plugin (P3O-V1, P3O-V2, online DPO).
 */
import { configSchema, enumField, integerField, numberField, type InferConfig } from '../config.js';

/**
 * Settings of `PairwiseOptimizer` (the shared part of a pairwise plugin's config), shared by every
 * pairwise plugin (P3O-V1, P3O-V2, online DPO) so that their optimisation settings, and so a comparison
 * between them, are the same by default: the authors' P3O code (docs/algorithms.md §1.9; `thwu1/trlx`
 * `examples/hh/p3o_hh.py`, the "6B" column). Each plugin spreads `PAIRWISE_OPTIMIZER_SCHEMA.entries` into its
 * own schema and adds its loss's fields.
 *
 * `rewardScaling: 'pairwise-std'` divides each pair's `r1 − r2` by the running std of the pair differences
 * seen so far, taken in both orders ±(r1 − r2) so the scale does not depend on which response is y1 (updated
 * with each rollout before use, docs/algorithms.md §2.3 merge). Both settings keep P3O's invariance to reward translation;
 * scaling by the running std of raw scores (the authors' pipeline) would not (docs/algorithms.md §1.7 caveat), so it is not
 * offered.
 */
export const PAIRWISE_OPTIMIZER_SCHEMA = configSchema({
  lr: numberField({
    default: 8e-6,
    min: 0,
    exclusiveMin: true,
    description: 'AdamW learning rate, constant (docs/algorithms.md §1.9: 8e-6; raise it for tiny models)',
  }),
  epochs: integerField({
    default: 4,
    min: 1,
    max: 100,
    description: 'passes over each rollout, a new shuffle each (docs/algorithms.md §1.9 p3o_epochs: 4)',
  }),
  pairsPerMinibatch: integerField({
    default: 4,
    min: 1,
    description: 'prompt pairs per minibatch = per optimizer step (docs/algorithms.md §1.9 batch_size: 4)',
  }),
  maxGradNorm: numberField({
    default: 1,
    min: 0,
    exclusiveMin: true,
    description: 'global gradient-norm clip (docs/algorithms.md §1.9: 1.0, DeepSpeed config)',
  }),
  weightDecay: numberField({
    default: 1e-6,
    min: 0,
    description: 'AdamW decoupled weight decay on matrices and embeddings (docs/algorithms.md §1.9: 1e-6)',
  }),
  adamBeta1: numberField({
    default: 0.9,
    min: 0,
    max: 1,
    exclusiveMax: true,
    description: 'AdamW β1 (docs/algorithms.md §1.9: 0.9)',
  }),
  adamBeta2: numberField({
    default: 0.95,
    min: 0,
    max: 1,
    exclusiveMax: true,
    description: 'AdamW β2 (docs/algorithms.md §1.9: 0.95)',
  }),
  adamEps: numberField({
    default: 1e-8,
    min: 0,
    exclusiveMin: true,
    description: 'AdamW ε (docs/algorithms.md §1.9: 1e-8)',
  }),
  rewardScaling: enumField({
    default: 'none',
    values: ['none', 'pairwise-std'],
    description:
      "'none', or divide r1 − r2 by its running std ('pairwise-std'); both keep invariance to reward translation " +
      '(docs/algorithms.md §1.7 caveat: the authors scale by the running std of raw scores, which does not)',
  }),
  rewardClip: numberField({
    default: 0,
    min: 0,
    description:
      'clip each raw score to [−c, c] before differencing; 0 = off (the authors use 10, docs/algorithms.md §1.7; a clip that ' +
      'shifted scores reach breaks invariance to reward translation)',
  }),
});

/** Settings of `PairwiseOptimizer`, as declared by {@link PAIRWISE_OPTIMIZER_SCHEMA}. */
export type PairwiseOptimizerConfig = InferConfig<typeof PAIRWISE_OPTIMIZER_SCHEMA>;

/** Reward processing of a pairwise algorithm (docs/algorithms.md §1.7 and its invariance caveat). */
export type PairRewardScaling = PairwiseOptimizerConfig['rewardScaling'];
