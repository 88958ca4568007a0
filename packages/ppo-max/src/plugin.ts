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
 *       global-norm clipping; a non-finite loss or gradient skips that model's step
 *
 * The critic (an LM backbone with a scalar value head, docs/algorithms.md §2.8) belongs to the plugin: a copy of the reward
 * model passed to {@link createPpoMaxPlugin} (the paper's choice, config `criticInit: 'reward-model'`) or of
 * the policy with a new head (`criticInit: 'policy'`). It has its own optimizer and learning rate, and its
 * weights, the two optimizers' moments, the shuffle streams and the running reward statistics are all in
 * `state()`.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  definePlugin,
  newRows,
  type AlgorithmInstance,
  type AlgorithmPlugin,
  type Metrics,
  type PluginContext,
  type PluginState,
  type UpdateContext,
} from '@relign/core';
import {
  batchToTensors,
  causalLmNllSum,
  CausalLM,
  collate,
  disposeBatchTensors,
  type TokenizedExample,
} from '@relign/lm';
import {
  computeLogprobs,
  responseMaskArray,
  validateRolloutBatch,
  type RolloutBatch,
  type RolloutMinibatch,
} from '@relign/rollout';
import { RewardNormalizer } from '@relign/reward-model';
import {
  AdamW,
  type PendingStep,
  createRng,
  rngFromState,
  RunningMoments,
  type Rng,
  type RngState,
  type RunningMomentsState,
} from '@relign/tensor';
import { ppoMaxConfigSchema, type PpoMaxConfig } from './config.js';
import { Critic, type CriticSource } from './critic.js';
import { logprobsAndEntropy } from './forward.js';
import { gae } from './gae.js';
import { ppoPolicyLoss } from './policy-loss.js';
import { chunks, selectRows, selectTokens } from './rows.js';
import { mossLearningRate } from './schedule.js';
import { tokenRewards } from './token-rewards.js';
import { valueLoss } from './value-loss.js';
import { whitenAdvantages } from './whiten.js';

const NAME = 'ppo-max';

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

/** Per-token host arrays of a rollout, `[B, Tr]` row-major, 0 at padding. */
interface RolloutData {
  values: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
  /** Advantages whitened over the whole rollout (`advantageWhitening: 'rollout'`). */
  whitened?: Float32Array;
  metrics: Metrics;
}

/** Data of one micro-batch: its rows as a batch and its per-token data tensors (caller disposes `tensors`). */
interface Micro {
  batch: RolloutBatch;
  mask: tf.Tensor2D;
  oldLogprobs: tf.Tensor2D;
  advantages: tf.Tensor2D;
  oldValues: tf.Tensor2D;
  returns: tf.Tensor2D;
}

interface PpoMaxJsonState {
  version: 1;
  updates: number;
  skippedSteps: number;
  rng: RngState;
  ptxRng: RngState;
  rewardMoments: RunningMomentsState;
  policyOptimizerStep: number;
  criticOptimizerStep: number;
}

/** Averages metrics over minibatches: `_max` keys keep the maximum, `_min` the minimum, others the mean. */
class MetricMean {
  private readonly sums = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  add(metrics: Metrics): void {
    for (const [k, v] of Object.entries(metrics)) {
      const prev = this.sums.get(k);
      if (k.endsWith('_max')) this.sums.set(k, prev === undefined ? v : Math.max(prev, v));
      else if (k.endsWith('_min')) this.sums.set(k, prev === undefined ? v : Math.min(prev, v));
      else this.sums.set(k, (prev ?? 0) + v);
      this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    }
  }
  result(): Metrics {
    const out: Metrics = {};
    for (const [k, s] of this.sums)
      out[k] = k.endsWith('_max') || k.endsWith('_min') ? s : s / this.counts.get(k)!;
    return out;
  }
}

/** Sums gradients of successive micro-batches, keyed by tfjs variable name. */
class GradSum {
  readonly sums = new Map<string, tf.Tensor>();
  add(grads: tf.NamedTensorMap): void {
    for (const [k, g] of Object.entries(grads)) {
      const prev = this.sums.get(k);
      if (prev) {
        this.sums.set(k, tf.add(prev, g));
        prev.dispose();
        g.dispose();
      } else {
        this.sums.set(k, g);
      }
    }
  }
  /** The sums keyed by parameter name (for AdamW). */
  byName(trainable: Map<string, tf.Variable>): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, v] of trainable) {
      const g = this.sums.get(v.name);
      if (g !== undefined) out[name] = g;
    }
    return out;
  }
  dispose(): void {
    for (const g of this.sums.values()) g.dispose();
    this.sums.clear();
  }
}

const BIG = 3.4e38;

/** Host scalar of a tensor (read asynchronously). */
async function scalar(t: tf.Tensor): Promise<number> {
  return (await t.data())[0]!;
}

class PpoMax implements AlgorithmInstance {
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
    context: PpoMaxContext,
    private readonly config: PpoMaxConfig,
  ) {
    if (!(context?.policy instanceof CausalLM))
      throw new TypeError(`${NAME}: context.policy must be a CausalLM.`);
    this.policy = context.policy;
    const ptx = context.ptxExamples ?? [];
    this.ptxPadId = context.ptxPadId ?? 0;
    this.checkPtx(ptx);
    this.ptxExamples = ptx;
    if (config.criticInit === 'reward-model') {
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
      this.critic = Critic.fromSource(context.rewardModel);
    } else {
      this.critic = Critic.fromPolicy(this.policy, `${String(context.seed)}/critic-head`);
    }
    const adam = { beta1: config.adamBeta1, beta2: config.adamBeta2, weightDecay: config.weightDecay };
    this.policyOptimizer = new AdamW({ ...adam, lr: config.lr, eps: config.adamEps });
    this.criticOptimizer = new AdamW({ ...adam, lr: config.criticLr, eps: config.criticAdamEps });
    this.normalizer = new RewardNormalizer(this.normalizerOptions());
    this.rng = createRng(context.seed);
    this.ptxRng = createRng(`${String(context.seed)}/ptx`);
  }

  private normalizerOptions(): { scale: boolean; normalize: boolean; clip?: number } {
    const { rewardNorm, rewardClip } = this.config;
    return {
      scale: rewardNorm === 'scale',
      normalize: rewardNorm === 'normalize',
      ...(rewardClip > 0 ? { clip: rewardClip } : {}),
    };
  }

  private checkPtx(examples: readonly TokenizedExample[]): void {
    if (!Array.isArray(examples))
      throw new TypeError(`${NAME}: ptxExamples must be an array of tokenized examples.`);
    if (this.config.ptxCoef > 0 && examples.length === 0) {
      throw new Error(
        `${NAME}: ptxCoef = ${this.config.ptxCoef} (PPO-ptx) needs SFT examples (ptxExamples): the Trainer option ` +
          'resources: { sftExamples } (or createPpoMaxPlugin({ ptxExamples })) with tokenized examples of @relign/lm, ' +
          'or set ptxCoef: 0.',
      );
    }
    const { vocab_size: V, n_positions: P } = this.policy.config;
    if (!Number.isInteger(this.ptxPadId) || this.ptxPadId < 0 || this.ptxPadId >= V) {
      throw new Error(`${NAME}: ptxPadId must be a token id in [0, ${V}), got ${this.ptxPadId}.`);
    }
    examples.forEach((ex, i) => {
      if (!(ex?.ids instanceof Int32Array) || ex.ids.length !== ex.length || ex.length < 1) {
        throw new Error(
          `${NAME}: ptxExamples[${i}] must be { ids: Int32Array, length, promptLength } with length = ids.length >= 1.`,
        );
      }
      if (ex.length > P)
        throw new Error(
          `${NAME}: ptxExamples[${i}] has ${ex.length} tokens, more than the policy's n_positions ${P}.`,
        );
      if (!Number.isInteger(ex.promptLength) || ex.promptLength < 0 || ex.promptLength > ex.length) {
        throw new Error(
          `${NAME}: ptxExamples[${i}].promptLength must be in [0, ${ex.length}], got ${ex.promptLength}.`,
        );
      }
      for (const id of ex.ids) {
        if (id < 0 || id >= V)
          throw new Error(
            `${NAME}: ptxExamples[${i}] has token id ${id} outside the policy's vocabulary [0, ${V}).`,
          );
      }
    });
  }

  private checkBatch(batch: RolloutMinibatch, fn: string): void {
    if (batch === null || typeof batch !== 'object')
      throw new TypeError(`${fn}: batch must be a RolloutMinibatch.`);
    validateRolloutBatch(batch, fn, this.policy.config.vocab_size);
    const { batchSize: B, responseWidth: Tr } = batch;
    const r = batch.rewards as unknown;
    if (!(r instanceof Float64Array || r instanceof Float32Array) || r.length !== B) {
      throw new Error(
        `${fn}: batch.rewards must be a Float64Array [B] = [${B}] (one raw score per response).`,
      );
    }
    for (let b = 0; b < B; b++) {
      if (!Number.isFinite(batch.rewards[b]!))
        throw new Error(`${fn}: batch.rewards[${b}] = ${batch.rewards[b]} is not finite.`);
    }
    if (!(batch.refLogprobs instanceof Float32Array) || batch.refLogprobs.length !== B * Tr) {
      throw new Error(
        `${fn}: batch.refLogprobs must be a Float32Array [B, Tr] = [${B}, ${Tr}]: PPO-max penalises the KL to the ` +
          'reference at every token (docs/algorithms.md §2.4); collect rollouts with referenceLogprobs: true.',
      );
    }
  }

  private checkContext(context: UpdateContext, fn: string): number {
    const beta = context?.klCoef;
    if (typeof beta !== 'number' || !Number.isFinite(beta) || beta < 0) {
      throw new Error(`${fn}: context.klCoef (β) must be a finite number >= 0, got ${String(beta)}.`);
    }
    return beta;
  }

  /** Rows per forward pass outside training (old values, evaluation). */
  private get chunkSize(): number {
    return this.config.microBatchSize > 0 ? this.config.microBatchSize : this.config.minibatchSize;
  }

  /**
   * The no-grad half of an iteration (docs/algorithms.md §4.6b): critic values at rollout time, per-token rewards, GAE, and
   * the statistics of docs/algorithms.md §2.10 / §4.9.
   */
  private rolloutData(batch: RolloutMinibatch, scores: Float32Array, beta: number): RolloutData {
    const { batchSize: B, responseWidth: Tr } = batch;
    const values = new Float32Array(B * Tr);
    const all = Array.from({ length: B }, (_, i) => i);
    for (const rows of chunks(all, this.chunkSize)) {
      const sub = selectRows(batch, rows);
      const v = tf.tidy(() => this.critic.values(sub));
      const host = v.dataSync();
      v.dispose();
      rows.forEach((r, i) =>
        values.set(host.subarray(i * sub.responseWidth, (i + 1) * sub.responseWidth), r * Tr),
      );
    }
    const maskHost = responseMaskArray(batch);
    const out = tf.tidy(() => {
      const mask = tf.tensor2d(maskHost, [B, Tr]);
      const { rewards, kl } = tokenRewards(
        {
          logprobs: tf.tensor2d(batch.logprobs, [B, Tr]),
          refLogprobs: tf.tensor2d(batch.refLogprobs!, [B, Tr]),
          scores: tf.tensor1d(scores),
          mask,
        },
        { klCoef: beta, estimator: this.config.klEstimator },
      );
      const { advantages, returns } = gae(rewards, tf.tensor2d(values, [B, Tr]), mask, {
        gamma: this.config.gamma,
        lambda: this.config.lambda,
      });
      const whitened =
        this.config.advantageWhitening === 'rollout'
          ? whitenAdvantages(advantages, mask, { clip: this.config.advantageClip })
          : undefined;
      return { kl, advantages, returns, ...(whitened ? { whitened } : {}) };
    });
    const kl = out.kl.dataSync() as Float32Array;
    const advantages = out.advantages.dataSync() as Float32Array;
    const returns = out.returns.dataSync() as Float32Array;
    const whitened = out.whitened?.dataSync() as Float32Array | undefined;
    tf.dispose(Object.values(out));

    // Statistics (host, float64), over valid tokens / responses.
    let n = 0;
    let klSeq = 0;
    let refKl = 0;
    let nll = 0;
    let nllRef = 0;
    let vSum = 0;
    let rSum = 0;
    let rSq = 0;
    let aSum = 0;
    let aSq = 0;
    let scoreSum = 0;
    for (let b = 0; b < B; b++) {
      const len = batch.responseLengths[b]!;
      let rowDelta = 0;
      for (let t = 0; t < len; t++) {
        const i = b * Tr + t;
        klSeq += kl[i]!;
        rowDelta += batch.logprobs[i]! - batch.refLogprobs![i]!;
        nll -= batch.logprobs[i]!;
        nllRef -= batch.refLogprobs![i]!;
        vSum += values[i]!;
        rSum += returns[i]!;
        rSq += returns[i]! ** 2;
        aSum += advantages[i]!;
        aSq += advantages[i]! ** 2;
      }
      refKl += rowDelta / len;
      n += len;
      scoreSum += scores[b]!;
    }
    const rMean = rSum / n;
    const aMean = aSum / n;
    const metrics: Metrics = {
      'ppo/score_mean': scoreSum / B,
      'ppo/kl': klSeq / B,
      'ppo/non_score_reward': (-beta * klSeq) / B,
      'ppo/ref_kl': refKl / B,
      'ppo/perplexity': Math.exp(nll / n),
      'ppo/perplexity_ref': Math.exp(nllRef / n),
      'ppo/response_length': n / B,
      'value/mean': vSum / n,
      'ppo/returns_mean': rMean,
      'ppo/returns_var': Math.max(rSq / n - rMean * rMean, 0),
      'ppo/advantages_mean': aMean,
      'ppo/advantages_var': Math.max(aSq / n - aMean * aMean, 0),
    };
    return { values, advantages, returns, ...(whitened ? { whitened } : {}), metrics };
  }

  /**
   * The advantages a minibatch trains with (`[rows, width]`, host): whitened over the minibatch (MOSS), taken
   * from the rollout-level whitening, or raw; then clipped when configured.
   */
  private minibatchAdvantages(
    roll: RolloutData,
    Tr: number,
    rows: readonly number[],
    mb: RolloutBatch,
  ): Float32Array {
    const width = mb.responseWidth;
    const { advantageWhitening: mode, advantageClip: clip } = this.config;
    if (mode === 'rollout') return selectTokens(roll.whitened!, Tr, rows, width);
    const raw = selectTokens(roll.advantages, Tr, rows, width);
    if (mode === 'minibatch') {
      const w = tf.tidy(() =>
        whitenAdvantages(
          tf.tensor2d(raw, [rows.length, width]),
          tf.tensor2d(responseMaskArray(mb), [rows.length, width]),
          { clip },
        ),
      );
      const host = w.dataSync() as Float32Array;
      w.dispose();
      return host;
    }
    return clip > 0 ? raw.map((a) => Math.min(Math.max(a, -clip), clip)) : raw;
  }

  /** Data tensors of one micro-batch (rows `idx` of the minibatch `mb`, whose host arrays are `[mbRows, mbWidth]`). */
  private micro(
    mb: RolloutBatch,
    idx: readonly number[],
    host: { adv: Float32Array; oldValues: Float32Array; returns: Float32Array },
  ): Micro {
    const batch = selectRows(mb, idx);
    const shape: [number, number] = [batch.batchSize, batch.responseWidth];
    const pick = (a: Float32Array) =>
      tf.tensor2d(selectTokens(a, mb.responseWidth, idx, batch.responseWidth), shape);
    return {
      batch,
      mask: tf.tensor2d(responseMaskArray(batch), shape),
      oldLogprobs: tf.tensor2d(batch.logprobs, shape),
      advantages: pick(host.adv),
      oldValues: pick(host.oldValues),
      returns: pick(host.returns),
    };
  }

  private disposeMicro(m: Micro): void {
    tf.dispose([m.mask, m.oldLogprobs, m.advantages, m.oldValues, m.returns]);
  }

  /**
   * Policy loss of a micro-batch (token mean over the minibatch's `n` tokens) and its statistics, inside the
   * caller's `tf.variableGrads` or `tf.tidy`. Statistics are `tf.keep`-ed: the caller disposes them.
   */
  private policyTerms(
    m: Micro,
    n: number,
    ptx?: { tensors: ReturnType<typeof batchToTensors>; targets: number },
  ) {
    const { config } = this;
    let logprobs: tf.Tensor2D;
    let entropy: tf.Tensor2D | undefined;
    if (config.entropyCoef > 0) ({ logprobs, entropy } = logprobsAndEntropy(this.policy, m.batch));
    else logprobs = computeLogprobs(this.policy, m.batch);
    const r = ppoPolicyLoss(
      { logprobs, oldLogprobs: m.oldLogprobs, advantages: m.advantages, mask: m.mask },
      { clipRange: config.policyClip ? config.clipRange : Infinity, tokenCount: n },
    );
    const cond = tf.cast(m.mask, 'bool');
    const ratio = tf.exp(tf.where(cond, tf.sub(logprobs, m.oldLogprobs), tf.zerosLike(logprobs)));
    const stats: Record<string, tf.Scalar> = {
      'loss/policy': r.loss,
      'policy/clipfrac': r.clipFrac,
      'policy/approxkl': r.approxKl,
      'policy/ratio_sum': tf.sum(tf.where(cond, ratio, tf.zerosLike(ratio))) as tf.Scalar,
      'policy/ratio_min': tf.min(tf.where(cond, ratio, tf.fill(ratio.shape, BIG))) as tf.Scalar,
      'policy/ratio_max': tf.max(tf.where(cond, ratio, tf.fill(ratio.shape, -BIG))) as tf.Scalar,
    };
    let loss: tf.Scalar = r.loss;
    if (entropy) {
      const h = tf.div(tf.sum(entropy), n) as tf.Scalar; // 0 at padding already
      stats['policy/entropy'] = h;
      loss = tf.sub(loss, tf.mul(h, config.entropyCoef));
    }
    if (ptx && ptx.targets > 0) {
      const nll = tf.div(causalLmNllSum(this.policy, ptx.tensors), ptx.targets) as tf.Scalar;
      stats['loss/ptx'] = nll;
      loss = tf.add(loss, tf.mul(nll, config.ptxCoef));
    }
    for (const s of Object.values(stats)) tf.keep(s);
    return { loss, stats };
  }

  /** Value loss of a micro-batch (token mean over `n`) and its statistics; see {@link policyTerms}. */
  private criticTerms(m: Micro, n: number) {
    const { config } = this;
    const values = this.critic.values(m.batch);
    const r = valueLoss(
      { values, oldValues: m.oldValues, returns: m.returns, mask: m.mask },
      { clipRange: config.valueClip ? config.valueClipRange : Infinity, tokenCount: n },
    );
    const stats: Record<string, tf.Scalar> = {
      'loss/value': r.loss,
      'value/clipfrac': r.clipFrac,
      'value/error': tf.div(tf.sum(tf.mul(tf.square(tf.sub(values, m.returns)), m.mask)), n) as tf.Scalar,
    };
    for (const s of Object.values(stats)) tf.keep(s);
    return { loss: tf.mul(r.loss, config.vfCoef) as tf.Scalar, stats };
  }

  /** `n` PPO-ptx examples drawn with replacement from the plugin's ptx stream (docs/algorithms.md §2.7: one per response). */
  private drawPtx(n: number): TokenizedExample[] {
    const out: TokenizedExample[] = [];
    for (let i = 0; i < n; i++) out.push(this.ptxExamples[this.ptxRng.int(this.ptxExamples.length)]!);
    return out;
  }

  async update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const fn = `${NAME}.update`;
    this.checkBatch(batch, fn);
    const beta = this.checkContext(context, fn);
    const { config } = this;
    const { batchSize: B, responseWidth: Tr } = batch;

    // docs/algorithms.md §2.3: the running moments take this iteration's rollout before they are used. Rows the replay buffer
    // hands again (bufferCapacity > promptsPerIteration) were counted when they were new.
    const fresh = newRows(batch, context).map((b) => batch.rewards[b]!);
    const raw = fresh.length > 0 ? this.normalizer.update(fresh) : new RunningMoments().update(batch.rewards); // statistics of the batch only, for the metrics
    const scores = this.normalizer.apply(batch.rewards);
    const roll = this.rolloutData(batch, scores, beta);

    // docs/algorithms.md §2.8 [CHOICE]: the first criticWarmupIterations updates train only the critic.
    const trainPolicy = this.updates >= config.criticWarmupIterations;
    const usePtx = trainPolicy && config.ptxCoef > 0;
    const policyVars = this.policy.trainableVariables();
    const criticVars = this.critic.trainableVariables();
    const mean = new MetricMean();
    let steps = 0;
    let skipped = 0;
    let policyLr = 0;
    let criticLr = 0;

    for (let epoch = 0; epoch < config.epochs; epoch++) {
      // A new seeded shuffle of the responses every epoch (docs/algorithms.md §4.6), from the checkpointed stream.
      for (const rows of chunks(this.rng.permutation(B), config.minibatchSize)) {
        const mb = selectRows(batch, rows);
        const width = mb.responseWidth;
        let n = 0;
        for (const l of mb.responseLengths) n += l;
        const host = {
          adv: this.minibatchAdvantages(roll, Tr, rows, mb),
          oldValues: selectTokens(roll.values, Tr, rows, width),
          returns: selectTokens(roll.returns, Tr, rows, width),
        };
        const ptxAll = usePtx ? this.drawPtx(rows.length) : [];
        let ptxTargets = 0;
        for (const ex of ptxAll) ptxTargets += Math.max(0, ex.length - Math.max(ex.promptLength, 1));

        const policyGrads = new GradSum();
        const criticGrads = new GradSum();
        const stats = new Map<string, number>();
        const addStat = (k: string, v: number, how: 'sum' | 'min' | 'max') => {
          const prev = stats.get(k);
          stats.set(
            k,
            prev === undefined
              ? v
              : how === 'min'
                ? Math.min(prev, v)
                : how === 'max'
                  ? Math.max(prev, v)
                  : prev + v,
          );
        };
        let policyLoss = 0;
        let criticLoss = 0;
        try {
          const idxAll = Array.from({ length: rows.length }, (_, i) => i);
          for (const idx of chunks(idxAll, config.microBatchSize)) {
            const m = this.micro(mb, idx, host);
            const ptx =
              usePtx && ptxTargets > 0
                ? {
                    tensors: batchToTensors(
                      collate(
                        idx.map((i) => ptxAll[i]!),
                        { padId: this.ptxPadId, padTo: Math.max(2, ...idx.map((i) => ptxAll[i]!.length)) },
                      ),
                    ),
                    targets: ptxTargets,
                  }
                : undefined;
            try {
              if (trainPolicy) {
                let kept: Record<string, tf.Scalar> = {};
                const g = tf.variableGrads(() => {
                  const t = this.policyTerms(m, n, ptx);
                  kept = t.stats;
                  return t.loss;
                }, [...policyVars.values()]);
                try {
                  policyLoss += await scalar(g.value);
                  for (const [k, s] of Object.entries(kept)) {
                    addStat(
                      k,
                      await scalar(s),
                      k.endsWith('_min') ? 'min' : k.endsWith('_max') ? 'max' : 'sum',
                    );
                  }
                } finally {
                  tf.dispose([g.value, ...Object.values(kept)]);
                }
                policyGrads.add(g.grads);
              }
              let kept: Record<string, tf.Scalar> = {};
              const g = tf.variableGrads(() => {
                const t = this.criticTerms(m, n);
                kept = t.stats;
                return t.loss;
              }, [...criticVars.values()]);
              try {
                criticLoss += await scalar(g.value);
                for (const [k, s] of Object.entries(kept)) addStat(k, await scalar(s), 'sum');
              } finally {
                tf.dispose([g.value, ...Object.values(kept)]);
              }
              criticGrads.add(g.grads);
            } finally {
              this.disposeMicro(m);
              if (ptx) disposeBatchTensors(ptx.tensors);
            }
          }

          // One guarded optimizer step per model for the minibatch, both or neither: a non-finite loss or
          // gradient, or an update beyond the guard's bounds (AdamW.guardedStep), in either skips both.
          const out: Metrics = {};
          const pending: PendingStep[] = [];
          try {
            if (trainPolicy) {
              policyLr = mossLearningRate(config.lr, this.policyOptimizer.step, config.lrWarmupSteps);
              const g = policyGrads.byName(policyVars);
              const o = { lr: policyLr, maxGradNorm: config.maxGradNorm, loss: policyLoss };
              pending.push(await this.policyOptimizer.prepareStep(g, policyVars, o));
            }
            criticLr = mossLearningRate(config.criticLr, this.criticOptimizer.step, config.lrWarmupSteps);
            const g = criticGrads.byName(criticVars);
            const o = { lr: criticLr, maxGradNorm: config.maxGradNorm, loss: criticLoss };
            pending.push(await this.criticOptimizer.prepareStep(g, criticVars, o));
          } catch (e) {
            pending.forEach((p) => p.discard());
            throw e;
          }
          const stepSkipped = pending.some((p) => p.skipped);
          if (stepSkipped) pending.forEach((p) => p.discard());
          else {
            const done = pending.map((p) => p.commit());
            if (trainPolicy) out['train/grad_norm'] = done[0]!.gradNorm;
            out['train/critic_grad_norm'] = done[done.length - 1]!.gradNorm;
          }
          if (stepSkipped) {
            skipped++;
          } else {
            steps++;
            for (const [k, v] of stats) {
              if (k === 'policy/ratio_sum') out['policy/ratio_mean'] = v / n;
              else out[k] = v;
            }
            mean.add(out);
          }
        } finally {
          policyGrads.dispose();
          criticGrads.dispose();
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
      'train/lr': policyLr,
      'train/critic_lr': criticLr,
      'train/critic_warmup': trainPolicy ? 0 : 1,
      'train/optimizer_steps': steps,
      'train/skipped_steps': skipped,
    };
  }

  async evaluate(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics> {
    const fn = `${NAME}.evaluate`;
    this.checkBatch(batch, fn);
    const beta = this.checkContext(context, fn);
    const { batchSize: B, responseWidth: Tr } = batch;
    // No state changes: the running statistics are read, not updated.
    const scores = this.normalizer.apply(batch.rewards);
    const roll = this.rolloutData(batch, scores, beta);
    const all = Array.from({ length: B }, (_, i) => i);
    // Whole batch = one minibatch for the whitening.
    const adv = this.minibatchAdvantages(roll, Tr, all, batch);
    let n = 0;
    for (const l of batch.responseLengths) n += l;
    const sums = new Map<string, number>();
    for (const idx of chunks(all, this.chunkSize)) {
      const m = this.micro(batch, idx, { adv, oldValues: roll.values, returns: roll.returns });
      try {
        const stats = tf.tidy(() => ({ ...this.policyTerms(m, n).stats, ...this.criticTerms(m, n).stats }));
        for (const [k, s] of Object.entries(stats)) {
          const v = await scalar(s);
          const prev = sums.get(k);
          sums.set(
            k,
            prev === undefined
              ? v
              : k.endsWith('_min')
                ? Math.min(prev, v)
                : k.endsWith('_max')
                  ? Math.max(prev, v)
                  : prev + v,
          );
        }
        tf.dispose(Object.values(stats));
      } finally {
        this.disposeMicro(m);
      }
    }
    const out: Metrics = { ...roll.metrics };
    for (const [k, v] of sums) {
      if (k === 'policy/ratio_sum') out['policy/ratio_mean'] = v / n;
      else out[k] = v;
    }
    return out;
  }

  state(): PluginState {
    const tensors = new Map<string, tf.Tensor>();
    const p = this.policyOptimizer.state();
    for (const [k, t] of p.tensors) tensors.set(`policyOptimizer.${k}`, t);
    const c = this.criticOptimizer.state();
    for (const [k, t] of c.tensors) tensors.set(`criticOptimizer.${k}`, t);
    for (const [k, v] of this.critic.variables()) tensors.set(`critic.${k}`, v.clone());
    const json: PpoMaxJsonState = {
      version: 1,
      updates: this.updates,
      skippedSteps: this.skippedSteps,
      rng: this.rng.state(),
      ptxRng: this.ptxRng.state(),
      rewardMoments: this.normalizer.moments.toJSON(),
      policyOptimizerStep: p.step,
      criticOptimizerStep: c.step,
    };
    return { json: json as unknown as Record<string, unknown>, tensors };
  }

  load(state: PluginState): void {
    const fn = `${NAME}.load`;
    if (
      state === null ||
      typeof state !== 'object' ||
      !(state.tensors instanceof Map) ||
      typeof state.json !== 'object' ||
      state.json === null
    ) {
      throw new Error(`${fn}: expected a state {json, tensors: Map} from state().`);
    }
    const j = state.json as Partial<PpoMaxJsonState>;
    if (j.version !== 1)
      throw new Error(`${fn}: state.json.version must be 1, got ${JSON.stringify(j.version)}.`);
    for (const key of ['updates', 'skippedSteps', 'policyOptimizerStep', 'criticOptimizerStep'] as const) {
      if (!Number.isInteger(j[key]) || (j[key] as number) < 0) {
        throw new Error(`${fn}: state.json.${key} must be an integer >= 0, got ${String(j[key])}.`);
      }
    }
    for (const key of ['rng', 'ptxRng', 'rewardMoments'] as const) {
      if (j[key] === undefined) throw new Error(`${fn}: state.json.${key} is missing.`);
    }
    const groups = {
      policyOptimizer: new Map<string, tf.Tensor>(),
      criticOptimizer: new Map<string, tf.Tensor>(),
      critic: new Map<string, tf.Tensor>(),
    };
    for (const [k, t] of state.tensors) {
      const dot = k.indexOf('.');
      const group = groups[k.slice(0, dot) as keyof typeof groups];
      if (dot < 0 || !group) {
        throw new Error(
          `${fn}: unexpected state tensor '${k}' (expected 'policyOptimizer.*', 'criticOptimizer.*' or 'critic.*').`,
        );
      }
      group.set(k.slice(dot + 1), t);
    }
    // Parse everything that can fail before changing anything.
    const rng = rngFromState(j.rng!);
    const ptxRng = rngFromState(j.ptxRng!);
    const moments = RunningMoments.fromJSON(j.rewardMoments!);
    this.critic.assign(groups.critic, fn);
    this.policyOptimizer.load({ step: j.policyOptimizerStep!, tensors: groups.policyOptimizer });
    this.criticOptimizer.load({ step: j.criticOptimizerStep!, tensors: groups.criticOptimizer });
    this.normalizer = new RewardNormalizer(this.normalizerOptions(), moments);
    this.rng = rng;
    this.ptxRng = ptxRng;
    this.updates = j.updates!;
    this.skippedSteps = j.skippedSteps!;
  }

  dispose(): void {
    this.policyOptimizer.dispose();
    this.criticOptimizer.dispose();
    this.critic.dispose();
  }
}
