/**
 * The PPO-max instance: the critic and both optimizers, the seeded streams and the running reward moments,
 * and one PPO iteration's optimisation phase per `update` (the overview is in `plugin.ts`). The work is in
 * `rollout-data.ts` (values, rewards, GAE, advantages), `update-step.ts` (one minibatch step), `terms.ts`
 * (the losses) and `state.ts` (checkpoint state).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  checkKlCoef,
  MetricMean,
  newRows,
  type AlgorithmInstance,
  type Metrics,
  type PluginContext,
  type PluginState,
  type UpdateContext,
} from '@relign/core';
import { CausalLM, type TokenizedExample } from '@relign/lm';
import type { RolloutMinibatch } from '@relign/rollout';
import { RewardNormalizer, type RewardNormalizerOptions } from '@relign/reward-model';
import { AdamW, createRng, RunningMoments, type Rng } from '@relign/tensor';
import { checkPpoBatch, checkPtxExamples, NAME } from './batch-checks.js';
import type { PpoMaxConfig } from './config.js';
import { Critic, type CriticSource } from './critic.js';
import { minibatchAdvantages, rolloutData } from './rollout-data.js';
import { chunks, selectRows, selectTokens } from './rows.js';
import { parseState, saveState } from './state.js';
import { criticTerms, disposeMicro, microBatch, policyTerms, ScalarLog, StatSums } from './terms.js';
import { trainMinibatch, type Trainees } from './update-step.js';

/** The create context with the resources resolved (see `createPpoMaxPlugin`). */
export interface PpoMaxInstanceContext extends PluginContext {
  rewardModel?: CriticSource | undefined;
  ptxExamples?: readonly TokenizedExample[] | undefined;
  ptxPadId?: number | undefined;
}

export class PpoMax implements AlgorithmInstance {
  private readonly policy: CausalLM;
  private readonly critic: Critic;
  private readonly policyOptimizer: AdamW;
  private readonly criticOptimizer: AdamW;
  private normalizer: RewardNormalizer;
  private readonly ptxExamples: readonly TokenizedExample[];
  private readonly ptxPadId: number;
  private rng: Rng;
  private ptxRng: Rng;
  private updates = 0;
  private skippedSteps = 0;

  constructor(
    context: PpoMaxInstanceContext,
    private readonly config: PpoMaxConfig,
  ) {
    if (!(context?.policy instanceof CausalLM))
      throw new TypeError(`${NAME}: context.policy must be a CausalLM.`);
    this.policy = context.policy;
    const { vocabSize, maxPositions: nPositions } = this.policy.dims;
    this.ptxExamples = context.ptxExamples ?? [];
    this.ptxPadId = context.ptxPadId ?? 0;
    checkPtxExamples(this.ptxExamples, {
      ptxCoef: config.ptxCoef,
      padId: this.ptxPadId,
      vocabSize,
      nPositions,
    });
    this.critic = this.createCritic(context);
    const adam = { beta1: config.adamBeta1, beta2: config.adamBeta2, weightDecay: config.weightDecay };
    this.policyOptimizer = new AdamW({ ...adam, lr: config.lr, eps: config.adamEps });
    this.criticOptimizer = new AdamW({ ...adam, lr: config.criticLr, eps: config.criticAdamEps });
    this.normalizer = new RewardNormalizer(this.normalizerOptions());
    this.rng = createRng(context.seed);
    this.ptxRng = createRng(`${String(context.seed)}/ptx`);
  }

  /** The critic: a copy of the reward model (the paper's choice) or of the policy with a new head (§2.8). */
  private createCritic(context: PpoMaxInstanceContext): Critic {
    if (this.config.criticInit !== 'reward-model')
      return Critic.fromPolicy(this.policy, `${String(context.seed)}/critic-head`);
    if (!context.rewardModel) {
      throw new Error(
        `${NAME}: criticInit 'reward-model' (the default: the paper initialises the critic from the reward model, ` +
          'docs/algorithms.md §2.8) needs a reward model to copy: pass the Trainer option resources: { rewardModel } (or ' +
          "context.resources.rewardModel, or createPpoMaxPlugin({ rewardModel })), or set criticInit: 'policy' to " +
          'start the critic from the policy.',
      );
    }
    const vocab = context.rewardModel.backbone?.config?.vocab_size;
    if (vocab !== this.policy.config.vocab_size) {
      throw new Error(
        `${NAME}: the reward model's vocab_size (${String(vocab)}) differs from the policy's ` +
          `(${this.policy.config.vocab_size}); the critic reads the policy's tokens, so they must share a tokenizer.`,
      );
    }
    return Critic.fromSource(context.rewardModel);
  }

  private normalizerOptions(): RewardNormalizerOptions {
    const { rewardNorm, rewardClip } = this.config;
    return {
      scale: rewardNorm === 'scale',
      normalize: rewardNorm === 'normalize',
      ...(rewardClip > 0 ? { clip: rewardClip } : {}),
    };
  }

  /** Rows per forward pass outside training (old values, evaluation). */
  private get chunkSize(): number {
    return this.config.microBatchSize > 0 ? this.config.microBatchSize : this.config.minibatchSize;
  }

  private get trainees(): Trainees {
    const { policy, critic, policyOptimizer, criticOptimizer, config, ptxPadId } = this;
    return { policy, critic, policyOptimizer, criticOptimizer, config, ptxPadId };
  }

  /** `n` PPO-ptx examples drawn with replacement from the plugin's ptx stream (docs/algorithms.md §2.7: one per response). */
  private drawPtx(n: number): TokenizedExample[] {
    const out: TokenizedExample[] = [];
    for (let i = 0; i < n; i++) out.push(this.ptxExamples[this.ptxRng.int(this.ptxExamples.length)]!);
    return out;
  }

  async update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const fn = `${NAME}.update`;
    checkPpoBatch(batch, fn, this.policy.config.vocab_size);
    const beta = checkKlCoef(context, fn);
    const { config } = this;
    const { batchSize: B, responseWidth: Tr } = batch;

    // docs/algorithms.md §2.3: the running moments take this iteration's rollout before they are used. Rows the replay buffer
    // hands again (bufferCapacity > promptsPerIteration) were counted when they were new.
    const fresh = newRows(batch, context).map((b) => batch.rewards[b]!);
    const raw = fresh.length > 0 ? this.normalizer.update(fresh) : new RunningMoments().update(batch.rewards); // statistics of the batch only, for the metrics
    const scores = this.normalizer.apply(batch.rewards);
    const roll = await rolloutData(this.critic, batch, scores, beta, config, this.chunkSize);

    // docs/algorithms.md §2.8 [CHOICE]: the first criticWarmupIterations updates train only the critic.
    const trainPolicy = this.updates >= config.criticWarmupIterations;
    const usePtx = trainPolicy && config.ptxCoef > 0;
    const mean = new MetricMean();
    let steps = 0;
    let skipped = 0;
    let lrs = { policyLr: 0, criticLr: 0 };
    for (let epoch = 0; epoch < config.epochs; epoch++) {
      // A new seeded shuffle of the responses every epoch (docs/algorithms.md §4.6), from the checkpointed stream.
      for (const rows of chunks(this.rng.permutation(B), config.minibatchSize)) {
        const mb = selectRows(batch, rows);
        const width = mb.responseWidth;
        let n = 0;
        for (const l of mb.responseLengths) n += l;
        const host = {
          adv: await minibatchAdvantages(roll, Tr, rows, mb, config),
          oldValues: selectTokens(roll.values, Tr, rows, width),
          returns: selectTokens(roll.returns, Tr, rows, width),
        };
        const ptx = usePtx ? this.drawPtx(rows.length) : [];
        const { metrics, ...rates } = await trainMinibatch(this.trainees, { mb, host, n, ptx }, trainPolicy);
        lrs = rates;
        if (metrics) {
          steps++;
          mean.add(metrics);
        } else {
          skipped++;
        }
      }
    }
    this.updates += 1;
    this.skippedSteps += skipped;
    return {
      ...roll.metrics,
      ...mean.result(),
      'ppo/score_raw_mean': raw.batchMean,
      'ppo/score_raw_std': raw.batchStd,
      'ppo/reward_running_mean': this.normalizer.mean,
      'ppo/reward_running_std': this.normalizer.std,
      'train/lr': lrs.policyLr,
      'train/critic_lr': lrs.criticLr,
      'train/critic_warmup': trainPolicy ? 0 : 1,
      'train/optimizer_steps': steps,
      'train/skipped_steps': skipped,
    };
  }

  async evaluate(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const fn = `${NAME}.evaluate`;
    checkPpoBatch(batch, fn, this.policy.config.vocab_size);
    const beta = checkKlCoef(context, fn);
    const { batchSize: B, responseWidth: Tr } = batch;
    // No state changes: the running statistics are read, not updated.
    const scores = this.normalizer.apply(batch.rewards);
    const roll = await rolloutData(this.critic, batch, scores, beta, this.config, this.chunkSize);
    const all = Array.from({ length: B }, (_, i) => i);
    // Whole batch = one minibatch for the whitening.
    const adv = await minibatchAdvantages(roll, Tr, all, batch, this.config);
    let n = 0;
    for (const l of batch.responseLengths) n += l;
    const log = new ScalarLog();
    try {
      for (const idx of chunks(all, this.chunkSize)) {
        const m = microBatch(batch, idx, { adv, oldValues: roll.values, returns: roll.returns });
        try {
          log.addAll(
            tf.tidy(() => ({
              ...policyTerms(this.policy, this.config, m, n).stats,
              ...criticTerms(this.critic, this.config, m, n).stats,
            })),
          );
        } finally {
          disposeMicro(m);
        }
      }
      const sums = new StatSums();
      for (const [k, v] of await log.read()) sums.add(k, v);
      return sums.result(n, { ...roll.metrics });
    } finally {
      log.dispose();
    }
  }

  state(): PluginState {
    return saveState({
      critic: this.critic,
      policyOptimizer: this.policyOptimizer,
      criticOptimizer: this.criticOptimizer,
      rng: this.rng,
      ptxRng: this.ptxRng,
      rewardMoments: this.normalizer.moments,
      updates: this.updates,
      skippedSteps: this.skippedSteps,
    });
  }

  load(state: PluginState): void {
    const fn = `${NAME}.load`;
    // Parse everything that can fail before changing anything (the critic checks every tensor first).
    const s = parseState(state, fn);
    this.critic.assign(s.critic, fn);
    this.policyOptimizer.load(s.policyOptimizer);
    this.criticOptimizer.load(s.criticOptimizer);
    this.normalizer = new RewardNormalizer(this.normalizerOptions(), s.rewardMoments);
    this.rng = s.rng;
    this.ptxRng = s.ptxRng;
    this.updates = s.updates;
    this.skippedSteps = s.skippedSteps;
  }

  dispose(): void {
    this.policyOptimizer.dispose();
    this.criticOptimizer.dispose();
    this.critic.dispose();
  }
}
