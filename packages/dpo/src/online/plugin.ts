/**
 * Online DPO as a relign optimizer plugin (docs/algorithms.md §1.12, §3.4): the DPO baseline of the P3O paper. Each
 * iteration the Trainer samples two responses per prompt from the current policy and scores them with the
 * reward function; the better one is "chosen" (hard labels, or soft Bradley–Terry labels), and the policy is
 * updated with the DPO-family loss against the frozen reference (the SFT model).
 *
 * Fair comparison with P3O (docs/algorithms.md §1.12): the update runs on the same machinery as P3O-V1/V2 (the
 * `PairwiseOptimizer` of `@relign/core`: the same replay buffer of pairs, epochs of seeded shuffles,
 * minibatch size, AdamW with global-norm clipping and the non-finite skip, checkpointed state) with the same
 * defaults; only the loss differs. Pairs whose two responses are identical carry no preference and are left
 * out of the update (counted in `dpo/identical_pairs`).
 */
import {
  checkPairRollout,
  definePlugin,
  PairwiseOptimizer,
  PAIRWISE_OPTIMIZER_SCHEMA,
  configSchema,
  enumField,
  numberField,
  type AlgorithmInstance,
  type InferConfig,
  type Metrics,
  type PluginContext,
  type PluginState,
  type RolloutRequirements,
  type UpdateContext,
} from '@relign/core';
import type { RolloutMinibatch } from '@relign/rollout';
import { DPO_LOSS_TYPES, resolveDpoLossOptions } from '../loss.js';
import { onlineDpoLoss, PAIR_LABELS } from './online-loss.js';
import { identicalPairs, selectPairs } from './pairs.js';

const PLUGIN_NAME = 'dpo';

/**
 * The config. Loss defaults from docs/algorithms.md §1.12 / §3.4; the optimisation settings are P3O's (docs/algorithms.md §1.9), so that
 * online DPO and P3O compared with default configs differ only in their loss (docs/algorithms.md §1.12).
 */
export const onlineDpoConfigSchema = configSchema({
  beta: numberField({
    default: 0,
    min: 0,
    description:
      "β of the DPO loss; 0 = the Trainer's KL coefficient (its kl option: one β for every optimizer; default " +
      '0.1 for dpo, docs/algorithms.md §1.12 and §3.4); > 0 fixes β here, whatever the Trainer sets',
  }),
  lossType: enumField({
    default: 'sigmoid',
    values: DPO_LOSS_TYPES,
    description:
      "'sigmoid' = DPO (cDPO with labelSmoothing > 0), 'robust' = rDPO, 'ipo' = IPO on sequence sums (docs/algorithms.md §3)",
  }),
  labelSmoothing: numberField({
    default: 0,
    min: 0,
    max: 0.5,
    exclusiveMax: true,
    description:
      'assumed fraction of flipped labels ε in [0, 0.5) for cDPO / rDPO (docs/algorithms.md §3.2); 0 for IPO',
  }),
  labels: enumField({
    default: 'hard',
    values: PAIR_LABELS,
    description:
      "'hard': the higher-scored response is chosen, ties to the first (docs/algorithms.md §1.12, TRL); 'soft': Bradley–Terry " +
      'labels p = σ(r_chosen − r_rejected)',
  }),
  ...PAIRWISE_OPTIMIZER_SCHEMA.entries,
  rewardScaling: enumField({
    default: 'none',
    values: ['none', 'pairwise-std'],
    description:
      "'none', or divide r1 − r2 by its running std ('pairwise-std'); changes only soft labels (hard labels depend on " +
      'the sign of r1 − r2)',
  }),
  rewardClip: numberField({
    default: 0,
    min: 0,
    description: 'clip each raw score to [−c, c] before labelling; 0 = off (docs/algorithms.md §1.7)',
  }),
});

/**
 * Online DPO settings, as declared by {@link onlineDpoConfigSchema}: the loss (β of the DPO loss, 0 = the
 * Trainer's KL coefficient; the type:
 * DPO / cDPO, rDPO or IPO; label smoothing ε in [0, 0.5), 0 for IPO; hard or soft labels) and the shared
 * pairwise-update settings.
 */
export type OnlineDpoConfig = InferConfig<typeof onlineDpoConfigSchema>;

interface OnlineDpoJsonState {
  /** The shared pairwise update's state (optimizer step, shuffle RNG, reward statistics, counters). */
  pairwise: Record<string, unknown>;
  /** Identical pairs skipped over the run. */
  identicalPairs: number;
}

/**
 * The online DPO instance: the shared {@link PairwiseOptimizer} with the DPO loss, after leaving out the pairs
 * whose two responses are identical.
 */
class OnlineDpo implements AlgorithmInstance {
  private readonly inner: PairwiseOptimizer;
  private identicalTotal = 0;
  /** β of the current update / evaluation (see {@link betaFor}). */
  private beta: number;

  constructor(
    context: PluginContext,
    private readonly config: OnlineDpoConfig,
  ) {
    const { lossType, labelSmoothing, labels } = config;
    this.beta = config.beta;
    this.inner = new PairwiseOptimizer({
      name: PLUGIN_NAME,
      metricPrefix: 'dpo',
      context,
      config,
      loss: (input) => onlineDpoLoss(input, { beta: this.beta, lossType, labelSmoothing, labels }),
    });
  }

  /**
   * β of the DPO loss: the config's when set (> 0), else the Trainer's KL coefficient. DPO's loss is the
   * closed form of max E[r] − β·KL(π‖π_ref) (docs/algorithms.md §3.1), so its β is the KL coefficient of the other
   * optimizers, and the Trainer's `kl` option sets it for all of them (an adaptive controller moves it).
   */
  private betaFor(context: UpdateContext, fn: string): number {
    if (this.config.beta > 0) return this.config.beta;
    const beta = context?.klCoef;
    if (typeof beta !== 'number' || !Number.isFinite(beta) || beta <= 0) {
      throw new Error(
        `${fn}: β of the DPO loss is the Trainer's KL coefficient (config beta: 0), which is ${String(beta)}; ` +
          'DPO needs β > 0: set the Trainer option kl (e.g. { kind: "fixed", value: 0.1 }) or the config beta.',
      );
    }
    return beta;
  }

  /** The rollout without its identical pairs (undefined when every pair is identical), and their count. */
  private split(
    batch: RolloutMinibatch,
    fn: string,
  ): { kept: RolloutMinibatch | undefined; identical: number; pairs: number } {
    checkPairRollout(batch, fn);
    const same = identicalPairs(batch);
    const keep = same.flatMap((s, i) => (s ? [] : [i]));
    const identical = same.length - keep.length;
    const kept = keep.length === 0 ? undefined : identical === 0 ? batch : selectPairs(batch, keep);
    return { kept, identical, pairs: same.length };
  }

  private extra(identical: number, pairs: number): Metrics {
    return {
      'dpo/beta': this.beta,
      'dpo/identical_pairs': identical,
      'dpo/identical_fraction': identical / pairs,
    };
  }

  async update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    this.beta = this.betaFor(context, `${PLUGIN_NAME}.update`);
    const { kept, identical, pairs } = this.split(batch, `${PLUGIN_NAME}.update`);
    this.identicalTotal += identical;
    // Every pair identical: nothing to learn from this rollout (no optimizer step, nothing skipped).
    const metrics = kept
      ? await this.inner.update(kept, context)
      : { 'train/lr': this.config.lr, 'train/optimizer_steps': 0, 'train/skipped_steps': 0 };
    return { ...metrics, ...this.extra(identical, pairs), 'dpo/identical_pairs_total': this.identicalTotal };
  }

  async evaluate(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    this.beta = this.betaFor(context, `${PLUGIN_NAME}.evaluate`);
    const { kept, identical, pairs } = this.split(batch, `${PLUGIN_NAME}.evaluate`);
    // With every pair identical, the statistics (ratios included) are those of the whole rollout.
    return { ...(await this.inner.evaluate(kept ?? batch, context)), ...this.extra(identical, pairs) };
  }

  state(): PluginState {
    const inner = this.inner.state();
    const json: OnlineDpoJsonState = { pairwise: inner.json, identicalPairs: this.identicalTotal };
    return { json: json as unknown as Record<string, unknown>, tensors: inner.tensors };
  }

  load(state: PluginState): void {
    const fn = `${PLUGIN_NAME}.load`;
    const j = state?.json as Partial<OnlineDpoJsonState> | undefined;
    if (j === null || typeof j !== 'object' || j.pairwise === null || typeof j.pairwise !== 'object') {
      throw new Error(`${fn}: expected a state {json: {pairwise, identicalPairs}, tensors} from state().`);
    }
    if (!Number.isInteger(j.identicalPairs) || (j.identicalPairs as number) < 0) {
      throw new Error(
        `${fn}: state.json.identicalPairs must be an integer >= 0, got ${String(j.identicalPairs)}.`,
      );
    }
    this.inner.load({ json: j.pairwise, tensors: state.tensors });
    this.identicalTotal = j.identicalPairs as number;
  }

  dispose(): void {
    this.inner.dispose();
  }
}

/**
 * The online DPO plugin (registry name `dpo`, the default export of `@relign/dpo`). Rollouts: 2 responses per
 * prompt with reference log-probs (docs/algorithms.md §1.12). Config validation beyond the schema: IPO takes no label
 * smoothing.
 */
export const onlineDpoPlugin = definePlugin<OnlineDpoConfig>({
  name: PLUGIN_NAME,
  description:
    'Online DPO (with cDPO, rDPO and IPO): pairs sampled from the policy, labelled by the reward (docs/algorithms.md §1.12, §3.4)',
  configSchema: onlineDpoConfigSchema,
  requirements: (): RolloutRequirements => ({
    responsesPerPrompt: 2,
    referenceLogprobs: true,
    valueHead: false,
    // The paper's β (docs/algorithms.md §1.12, §3.4), used by a Trainer without a kl option; β comes from the Trainer.
    klCoef: 0.1,
  }),
  create: (context, config) => {
    // Cross-field rules the schema cannot state (IPO has no label smoothing), checked before anything is built.
    resolveDpoLossOptions(
      {
        // β may come from the Trainer at update time (config 0); any valid β checks the other fields.
        beta: config.beta > 0 ? config.beta : 0.1,
        lossType: config.lossType,
        labelSmoothing: config.labelSmoothing,
        ipoNormalization: 'sum',
      },
      `${PLUGIN_NAME} config`,
    );
    return new OnlineDpo(context, config);
  },
});
