/**
 * One rollout, scored: generate → reward → reference log-probs (spec §4.6b, the "rollout (no grad)" half of
 * an iteration). Shared by the Trainer, its evaluation and the conformance suite.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import { computeLogprobs, generate, type PromptTokens, type RolloutBatch } from '@relign/rollout';
import type { RewardFunction } from '@relign/reward-model';

/** Sampling settings of the trainer (responses per prompt, seed and policy version are set per call). */
export interface GenerationOptions {
  /** Most tokens per response (>= 1). */
  maxNewTokens: number;
  /** Sampling temperature τ > 0 (default 1). Log-probs of every model use the same τ (spec §4.2). */
  temperature?: number;
  /** Top-k (0 = off, the default). Keep it off for RL: the sampler is then not π_θ (spec §4.2). */
  topK?: number;
  /** Nucleus top-p (1 = off, the default). Keep it off for RL (spec §4.2). */
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
  batch: RolloutBatch;
  /** `[B]` raw reward-function scores (finite). */
  rewards: Float32Array;
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
  return out;
}

/**
 * Scores a batch with a reward function: token arrays (prompt without padding, response with its stop token)
 * unless the function works on text and a tokenizer is available, in which case decoded text (response
 * without its stop token). Per-row metadata (`endedWithEos`, `responseLengths`) is passed along.
 *
 * @returns `[B]` scores.
 * @throws Error naming the reward function and the row (prompt and response index) of a non-finite score,
 *   or a wrong number of scores; nothing is returned for such a batch.
 */
export async function scoreBatch(
  reward: RewardFunction,
  batch: RolloutBatch,
  context: {
    prompts?: readonly PromptTokens[];
    promptTexts?: readonly string[];
    tokenizer?: TextDecoder;
  } = {},
): Promise<Float32Array> {
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr, responsesPerPrompt: G } = batch;
  const promptTokens: Int32Array[] = [];
  const responseTokens: Int32Array[] = [];
  for (let b = 0; b < B; b++) {
    promptTokens.push(batch.promptTokens.slice(b * Tp + Tp - batch.promptLengths[b]!, (b + 1) * Tp));
    responseTokens.push(batch.responseTokens.slice(b * Tr, b * Tr + batch.responseLengths[b]!));
  }
  const options = {
    endedWithEos: Array.from(batch.endedWithEos, (v) => v === 1),
    responseLengths: Array.from(batch.responseLengths),
  };
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
  const out = Float32Array.from(scores);
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

/** Whether every parameter of `model` is finite (one device reduction per variable, one host read). */
export function parametersFinite(model: CausalLM): { finite: boolean; firstBad?: string } {
  const vars = [...model.variables()];
  const flags = tf.tidy(() => tf.stack(vars.map(([, v]) => tf.all(tf.isFinite(v)))).dataSync());
  for (let i = 0; i < vars.length; i++) if (!flags[i]) return { finite: false, firstBad: vars[i]![0] };
  return { finite: true };
}
