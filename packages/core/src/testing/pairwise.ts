/**
 * Test helpers for pairwise optimizer plugins (P3O-V1, P3O-V2, online DPO, third parties): a fresh scored
 * rollout of two responses per prompt, parameter snapshots and their differences, the end-to-end
 * reward-translation run of docs/algorithms.md §1.10, and a short learning run on the count-a-token task. They take the
 * plugin as an argument, so each plugin's own tests state only what they assert.
 */
import { CausalLM, type GPT2ConfigInput } from '@relign/lm';
import { rewardFunction, type RewardFunction, type TokenIds } from '@relign/reward-model';
import { computeLogprobs, generate, type RolloutMinibatch } from '@relign/rollout';
import type { AlgorithmPlugin, Metrics } from '../plugin.js';
import { Trainer } from '../trainer.js';

export type ParameterSnapshot = Map<string, Float32Array>;

/** Copies of every parameter of `model`, by name. */
export function snapshotParameters(model: CausalLM): ParameterSnapshot {
  return new Map([...model.variables()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
}

/** How many parameter entries differ (bitwise, `Object.is`) between two snapshots. */
export function countChangedParameters(a: ParameterSnapshot, b: ParameterSnapshot): number {
  let n = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) n++;
  }
  return n;
}

/** Largest per-tensor relative difference `max|a − b| / max(|a|, |b|)`. */
export function relativeParameterDifference(a: ParameterSnapshot, b: ParameterSnapshot): number {
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < x.length; i++) {
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
      scale = Math.max(scale, Math.abs(x[i]!), Math.abs(y[i]!));
    }
    worst = Math.max(worst, diff / Math.max(scale, 1e-12));
  }
  return worst;
}

/** Largest absolute difference over all parameter entries. */
export function maxAbsParameterDifference(a: ParameterSnapshot, b: ParameterSnapshot): number {
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}

/**
 * A fresh rollout of `policy` (2 responses per prompt, τ = 1, at most 6 new tokens, stop token 0) with the
 * reference's log-probs and `rewards(row)`, as the Trainer hands it to `plugin.update`.
 */
export async function pairRollout(
  policy: CausalLM,
  reference: CausalLM,
  prompts: readonly (readonly number[])[],
  rewards: (row: number) => number,
  seed = 5,
): Promise<RolloutMinibatch> {
  const batch = await generate(policy, prompts, {
    maxNewTokens: 6,
    temperature: 1,
    stopTokenIds: [0],
    responsesPerPrompt: 2,
    seed,
  });
  const ref = computeLogprobs(reference, batch);
  const refLogprobs = (await ref.data()) as Float32Array;
  ref.dispose();
  return {
    ...batch,
    rewards: Float64Array.from({ length: batch.batchSize }, (_, b) => rewards(b)),
    refLogprobs,
    policyVersions: new Int32Array(batch.batchSize),
  };
}

/** r = how many times `token` appears in the response (a task a tiny model can learn). */
export function countTokenReward(
  token: number,
  shift?: (prompt: ArrayLike<number>) => number,
): RewardFunction {
  return rewardFunction(
    (prompt, response) => {
      let r = 0;
      for (const t of response) if (t === token) r++;
      return shift ? r + shift(prompt) : r;
    },
    { inputKind: 'tokens', name: shift ? `count-${token}-shifted` : `count-${token}` },
  );
}

const INVARIANCE_PROMPTS = [[1], [2, 3], [4], [5, 6], [7], [8, 9]];

export interface RewardTranslationOptions {
  /**
   * `'integer'` (default): r = the count of token 3, δ(prompt) = 100·promptIndex − 300. `'fractional'`:
   * r = 0.1 + 0.2·count (0.1, 0.3, ...), δ(prompt) = 1e5·(promptIndex + 1): only float64 rewards keep
   * r1 − r2 of the shifted scores equal to the unshifted one (float32 rounds 1e5 + 0.3 to a multiple of 1/128).
   */
  rewards?: 'integer' | 'fractional';
  /**
   * The config that `config` is spread over. Default `{ lr: 1e-2, epochs: 2, pairsPerMinibatch: 2 }` (the
   * pairwise plugins' keys); a plugin whose strict schema lacks one of them passes its own base here.
   */
  baseConfig?: Record<string, unknown>;
}

/**
 * One short Trainer run (4 iterations, lr 1e-2 so parameters move far) of `plugin` on the count-3 reward,
 * with δ(prompt) added when `shifted` (docs/algorithms.md §1.10; see {@link RewardTranslationOptions}). The runs share every
 * seed, so a plugin invariant to reward translation ends with the same parameters either way.
 */
export async function rewardTranslationRun(
  plugin: AlgorithmPlugin,
  shifted: boolean,
  config: Record<string, unknown> = {},
  options: RewardTranslationOptions = {},
): Promise<{ initial: ParameterSnapshot; final: ParameterSnapshot }> {
  const promptIndex = (p: ArrayLike<number>): number => {
    const i = INVARIANCE_PROMPTS.findIndex((q) => q.length === p.length && q.every((t, k) => t === p[k]));
    if (i < 0) throw new Error(`rewardTranslationRun: unknown prompt ${Array.from(p).join(' ')}`);
    return i;
  };
  const policy = CausalLM.create({ vocab_size: 16, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }, 5);
  const initial = snapshotParameters(policy);
  const trainer = new Trainer({
    policy,
    prompts: INVARIANCE_PROMPTS,
    reward:
      options.rewards === 'fractional'
        ? rewardFunction(
            (p: TokenIds, response: TokenIds) => {
              let n = 0;
              for (const t of response) if (t === 3) n++;
              return 0.1 + 0.2 * n + (shifted ? 1e5 * (promptIndex(p) + 1) : 0);
            },
            { inputKind: 'tokens', name: 'count-3-fractional' },
          )
        : countTokenReward(3, shifted ? (p) => 100 * promptIndex(p) - 300 : undefined),
    plugin,
    pluginConfig: { ...(options.baseConfig ?? { lr: 1e-2, epochs: 2, pairsPerMinibatch: 2 }), ...config },
    generation: { maxNewTokens: 6, stopTokenIds: [0] },
    promptsPerIteration: 4,
    iterations: 4,
    seed: 9,
  });
  try {
    await trainer.train();
    return { initial, final: snapshotParameters(policy) };
  } finally {
    trainer.dispose();
    policy.dispose();
  }
}

export interface LearningRunOptions {
  /** Trainer iterations of 8 prompts. */
  iterations: number;
  /** Fixed KL coefficient β. */
  klCoef: number;
  /** Plugin config (e.g. a learning rate fit for a tiny model). */
  config: Record<string, unknown>;
  /** Rewarded token (default 3). */
  token?: number;
  /** Model shape (default V = 16, width 32, 1 layer, 2 heads). */
  model?: GPT2ConfigInput;
}

/**
 * A learning run on the count-a-token task (at most 8 new tokens, stop token 0) from a random tiny model;
 * returns the Trainer's metrics per iteration (`reward/mean`, `objective/kl`, ...).
 */
export async function countTokenLearningRun(
  plugin: AlgorithmPlugin,
  options: LearningRunOptions,
): Promise<Metrics[]> {
  const policy = CausalLM.create(
    options.model ?? { vocab_size: 16, n_positions: 16, n_embd: 32, n_layer: 1, n_head: 2 },
    3,
  );
  const history: Metrics[] = [];
  const trainer = new Trainer({
    policy,
    prompts: [[1], [2], [4, 5], [6], [7, 8], [9], [10, 11], [12]],
    reward: countTokenReward(options.token ?? 3),
    plugin,
    pluginConfig: options.config,
    kl: { kind: 'fixed', value: options.klCoef },
    generation: { maxNewTokens: 8, stopTokenIds: [0] },
    promptsPerIteration: 8,
    iterations: options.iterations,
    seed: 1,
    onMetrics: (m) => history.push(m),
  });
  try {
    await trainer.train();
  } finally {
    trainer.dispose();
    policy.dispose();
  }
  return history;
}
