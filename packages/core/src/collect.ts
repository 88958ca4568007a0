/**
 * One rollout, scored: generate → reward → reference log-probs (docs/algorithms.md §4.6b, the "rollout (no grad)" half of
 * an iteration). Shared by the Trainer, its evaluation and the conformance suite.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import {
  computeLogprobs,
  generate,
  TokenDistribution,
  type PromptTokens,
  type RolloutBatch,
} from '@relign/rollout';
import type { RewardFunction, ScoreOptions } from '@relign/reward-model';

/** Sampling settings of the trainer (responses per prompt, seed and policy version are set per call). */
export interface GenerationOptions {
  /** Most tokens per response (>= 1). */
  maxNewTokens: number;
  /** Sampling temperature τ > 0 (default 1). Log-probs of every model use the same τ (docs/algorithms.md §4.2). */
  temperature?: number;
  /**
   * Top-k (0 = off, the default). With top-k or top-p on, tokens are drawn from the truncated distribution but
   * the rollout keeps the log-probs of the full-vocabulary `softmax(z/τ)` (what the loss and the reference use,
   * docs/algorithms.md §4.2), so importance ratios start at 1 and the KL is that of π_θ. The samples are then off-policy:
   * they come from the truncated sampler, not from π_θ, and nothing corrects for it (the cut tail is never
   * sampled, so its probability is never pushed down or up). Keep top-k/top-p off for RL unless that bias is
   * wanted; each truncated rollout also costs one more forward pass of the policy.
   */
  topK?: number;
  /** Nucleus top-p (1 = off, the default). Same off-policy bias as `topK`. */
  topP?: number;
  /** Tokens that end a response (e.g. `[tokenizer.eosId]`). */
  stopTokenIds: readonly number[];
  /** Padding id (default `stopTokenIds[0] ?? 0`). */
  padTokenId?: number;
}

/** Decoder used to hand text to text reward functions (`BpeTokenizer` of @relign/lm fits). */
export interface TextDecoder {
  decode(ids: ArrayLike<number>): string;
}

/** A scored rollout in host arrays. */
export interface ScoredRollout {
  /**
   * The sampled batch. Its `logprobs` are full-vocabulary log-probs at the sampling temperature (docs/algorithms.md §4.2),
   * also when top-k/top-p truncated the distribution the tokens were drawn from (see `samplingLogprobs`).
   */
  batch: RolloutBatch;
  /**
   * `[B]` raw reward-function scores (finite), in float64: P3O's invariance to r + δ(x) needs `r1 − r2` of
   * the scores as returned, not of their float32 roundings (docs/algorithms.md §1.10).
   */
  rewards: Float64Array;
  /**
   * `[B, Tr]` log-probs under the truncated distribution actually sampled from (0 at padding); present only
   * when top-k/top-p truncated it, in which case `batch.logprobs` was replaced by full-vocabulary log-probs.
   */
  samplingLogprobs?: Float32Array;
  /** `[B, Tr]` reference log-probs (0 at padding), when a reference was given. */
  refLogprobs?: Float32Array;
  /** Seconds spent generating, scoring and in the reference pass. */
  seconds: { generate: number; score: number; reference: number };
}

export interface CollectOptions {
  policy: CausalLM;
  /** The frozen reference; its log-probs are computed when given. */
  reference?: CausalLM;
  prompts: readonly PromptTokens[];
  /** Texts of `prompts` (same order), when known; otherwise they are decoded when a text reward needs them. */
  promptTexts?: readonly string[];
  /** The record of each prompt (same order), handed to the reward function per row (`ScoreOptions.records`). */
  promptRecords?: readonly unknown[];
  reward: RewardFunction;
  tokenizer?: TextDecoder;
  generation: GenerationOptions;
  responsesPerPrompt: number;
  seed: number | string;
  policyVersion: number;
}

const now = (): number => performance.now() / 1000;

/** Generates, scores and (with a reference) computes reference log-probs for one batch of prompts. */
export async function collectRollout(o: CollectOptions): Promise<ScoredRollout> {
  const t0 = now();
  const batch = await generate(o.policy, o.prompts, {
    ...o.generation,
    responsesPerPrompt: o.responsesPerPrompt,
    seed: o.seed,
    policyVersion: o.policyVersion,
  });
  // Truncated sampling (top-k/top-p): the log-probs generate recorded are of the truncated distribution, but
  // the loss, the reference and every KL use the full softmax(z/τ) (docs/algorithms.md §4.2). Keep those for training, so
  // ratios are 1 before an update and KL(π_θ‖π_ref) is 0 at θ = ref.
  let samplingLogprobs: Float32Array | undefined;
  if (new TokenDistribution(o.policy.config.vocab_size, batch.options).truncates) {
    const lp = computeLogprobs(o.policy, batch);
    try {
      samplingLogprobs = batch.logprobs;
      batch.logprobs = (await lp.data()) as Float32Array;
    } finally {
      lp.dispose();
    }
  }
  const t1 = now();
  const rewards = await scoreBatch(o.reward, batch, o);
  const t2 = now();
  let refLogprobs: Float32Array | undefined;
  if (o.reference) {
    const lp = computeLogprobs(o.reference, batch);
    try {
      refLogprobs = (await lp.data()) as Float32Array;
    } finally {
      lp.dispose();
    }
  }
  const t3 = now();
  const out: ScoredRollout = {
    batch,
    rewards,
    seconds: { generate: t1 - t0, score: t2 - t1, reference: t3 - t2 },
  };
  if (refLogprobs) out.refLogprobs = refLogprobs;
  if (samplingLogprobs) out.samplingLogprobs = samplingLogprobs;
  return out;
}

/**
 * Scores a batch with a reward function: token arrays (prompt without padding, response with its stop token)
 * unless the function works on text and a tokenizer is available, in which case decoded text (response
 * without its stop token). Per-row metadata (`endedWithEos`, `responseLengths`, and with `promptRecords` the
 * row's prompt record) is passed along.
 *
 * @returns `[B]` scores in float64 (the reward function's numbers as returned, see {@link ScoredRollout.rewards}).
 * @throws Error naming the reward function and the row (prompt and response index) of a non-finite score,
 *   or a wrong number of scores; nothing is returned for such a batch.
 */
export async function scoreBatch(
  reward: RewardFunction,
  batch: RolloutBatch,
  context: {
    prompts?: readonly PromptTokens[];
    promptTexts?: readonly string[];
    /** One record per prompt of the batch (rows `g·G … g·G + G − 1` share record `g`). */
    promptRecords?: readonly unknown[];
    tokenizer?: TextDecoder;
  } = {},
): Promise<Float64Array> {
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr, responsesPerPrompt: G } = batch;
  const promptTokens: Int32Array[] = [];
  const responseTokens: Int32Array[] = [];
  for (let b = 0; b < B; b++) {
    promptTokens.push(batch.promptTokens.slice(b * Tp + Tp - batch.promptLengths[b]!, (b + 1) * Tp));
    responseTokens.push(batch.responseTokens.slice(b * Tr, b * Tr + batch.responseLengths[b]!));
  }
  const options: ScoreOptions = {
    endedWithEos: Array.from(batch.endedWithEos, (v) => v === 1),
    responseLengths: Array.from(batch.responseLengths),
  };
  if (context.promptRecords) {
    const records = context.promptRecords;
    if (records.length * G !== B) {
      throw new Error(
        `scoreBatch: ${records.length} prompt records for ${B / G} prompts; pass one record per prompt.`,
      );
    }
    options.records = Array.from({ length: B }, (_, b) => records[Math.floor(b / G)]);
  }
  let scores: ArrayLike<number>;
  if (reward.inputKind === 'text' && context.tokenizer) {
    const tok = context.tokenizer;
    const prompts = promptTokens.map((p, b) => context.promptTexts?.[Math.floor(b / G)] ?? tok.decode(p));
    // The stop token is not text: a text scorer sees the response as a user would.
    const responses = responseTokens.map((r, b) =>
      tok.decode(batch.endedWithEos[b] ? r.subarray(0, r.length - 1) : r),
    );
    scores = await reward.score(prompts, responses, options);
  } else {
    scores = await reward.score(promptTokens, responseTokens, options);
  }
  if (
    scores === null ||
    typeof scores !== 'object' ||
    typeof scores.length !== 'number' ||
    scores.length !== B
  ) {
    throw new Error(
      `reward function "${reward.name}" returned ${scores?.length ?? String(scores)} scores for ${B} responses; ` +
        'it must return one finite number per response.',
    );
  }
  const out = Float64Array.from(scores);
  for (let b = 0; b < B; b++) {
    if (!Number.isFinite(out[b]!)) {
      throw new Error(
        `reward function "${reward.name}" returned a non-finite score (${String(scores[b])}) for row ${b} ` +
          `(prompt ${Math.floor(b / G)} of the iteration, response ${b % G}); rewards must be finite. The rollout ` +
          'was not added to the buffer; fix the reward function or filter such responses.',
      );
    }
  }
  return out;
}

/** Row sums of a host `[B, Tr]` array over each row's valid response tokens. */
export function sequenceSums(values: ArrayLike<number>, batch: RolloutBatch): Float64Array {
  const { batchSize: B, responseWidth: Tr } = batch;
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let t = 0; t < batch.responseLengths[b]!; t++) s += values[b * Tr + t]!;
    out[b] = s;
  }
  return out;
}

/**
 * Whether every parameter of `model` is finite (one device reduction per variable, one asynchronous host
 * read).
 */
export async function parametersFinite(model: CausalLM): Promise<{ finite: boolean; firstBad?: string }> {
  const vars = [...model.variables()];
  if (vars.length === 0) return { finite: true };
  const stacked = tf.tidy(() => tf.stack(vars.map(([, v]) => tf.all(tf.isFinite(v)))));
  let flags: ArrayLike<number>;
  try {
    flags = await stacked.data();
  } finally {
    stacked.dispose();
  }
  for (let i = 0; i < vars.length; i++) if (!flags[i]) return { finite: false, firstBad: vars[i]![0] };
  return { finite: true };
}
