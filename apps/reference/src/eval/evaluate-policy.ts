/**
 * Evaluation of one policy on held-out prompts (issue 9): gold, judge and proxy scores, KL to the SFT model,
 * length, EOS rate, collapse signs (distinct-n, repetition) and the win rate against SFT.
 */
import { scoreBatch, sequenceKl, type GenerationOptions } from '@relign/core';
import type { CausalLM } from '@relign/lm';
import type { RewardFunction } from '@relign/reward-model';
import { computeLogprobs, generate, type PromptTokens, type RolloutBatch } from '@relign/rollout';
import { meanStd } from './stats.js';
import { distinctN, repetition, textTokens } from './text-metrics.js';
import type { EvalResult, Evaluation, SampleRecord } from './types.js';
import { winRate } from './win-rate.js';

/** Held-out prompts: token ids (what the model reads) and their texts (what text labelers read). */
export interface EvalPrompts {
  /** `[N]` prompts as token arrays (each at least one token). */
  tokens: readonly PromptTokens[];
  /** `[N]` the same prompts as text, in the same order. */
  texts: readonly string[];
  /**
   * `[N]` each prompt's record (`{ prompt, answer }` of task arithmetic), handed to the scorers as the
   * Trainer hands it to the training reward. Optional: scorers of text alone need none.
   */
  records?: readonly unknown[];
}

/** Decodes response tokens to text (`BpeTokenizer` of @relign/lm fits). */
export interface EvalTokenizer {
  decode(ids: ArrayLike<number>): string;
}

/** The SFT model's samples on the same prompts, for the win rate against SFT. */
export interface BaselineSamples {
  /** Row i answers prompt i: the prompt text and the proxy and judge scores of the response. */
  samples: readonly Pick<SampleRecord, 'prompt' | 'proxy' | 'judge'>[];
}

export interface EvaluatePolicyOptions {
  /** `'sft'`, `'<algo>'` or `'<algo>-step-<N>'` (the file name under `eval/` and `samples/`). */
  name: string;
  /** The optimizer that trained the policy (`'sft'` for the SFT model). */
  algo: string;
  /** Optimizer step of the policy (0 for SFT). */
  step: number;
  /** The policy to evaluate (not modified). Pass the SFT model itself to evaluate SFT (KL is then 0). */
  policy: CausalLM;
  /** The SFT model: reference of the KL and baseline of the win rate. */
  sft: CausalLM;
  /** The proxy reward (the reward model RL optimised); token or text input. */
  proxy: RewardFunction;
  /** The gold labeler ({@link goldLabeler}). */
  gold: RewardFunction;
  /** The independent judge ({@link judgeLabeler}). */
  judge: RewardFunction;
  tokenizer: EvalTokenizer;
  prompts: EvalPrompts;
  /**
   * Sampling settings: `maxNewTokens`, `stopTokenIds`, `temperature` τ > 0 (default 1). Top-k and top-p
   * must be off: KL is measured on samples from π_θ at τ (docs/algorithms.md §4.2, §1.11).
   */
  generation: GenerationOptions;
  /** Seed of the sampling streams. Use the same seed for every policy (same prompts, comparable samples). */
  seed: number | string;
  /** Prompts per generation batch (>= 1). Default 32. Changing it changes the samples. */
  batchSize?: number;
  /**
   * The SFT evaluation's samples (same prompts, same order). Without it, and when `policy` is not `sft`,
   * SFT is sampled again here (same seed) to compute `winRates.vsSft`.
   */
  baseline?: BaselineSamples;
  /** Recorded in the result (frontier sweeps). */
  klCoef?: number;
  /** Training seed, recorded in the result (frontier sweeps). */
  trainSeed?: number | string;
  /**
   * Gold = accuracy of the greedy (τ = 0) answer, as math benchmarks report it; the sampled answers' gold
   * mean goes to `goldSampled` (task arithmetic). One sample at τ = 1 from a model right 35 % of the time
   * is a noisy measure of what it knows, and it moves less than the mode does under RL. KL, proxy, judge
   * and the sample records stay on the sampled responses. Default false.
   */
  greedyGold?: boolean;
}

interface Scored {
  batch: RolloutBatch;
  responses: string[];
  proxy: Float64Array;
  judge: Float64Array;
}

const FN = 'evaluatePolicy';

function validate(o: EvaluatePolicyOptions): { batchSize: number; n: number } {
  if (o === null || typeof o !== 'object') throw new Error(`${FN}: options must be an object.`);
  if (typeof o.name !== 'string' || o.name === '' || /[/\\]/.test(o.name)) {
    throw new Error(
      `${FN}: name must be a non-empty string without slashes (it names eval/<name>.json), got ${JSON.stringify(o.name)}.`,
    );
  }
  if (typeof o.algo !== 'string' || o.algo === '') {
    throw new Error(
      `${FN}: algo must be a non-empty string (the optimizer, or 'sft'), got ${JSON.stringify(o.algo)}.`,
    );
  }
  if (!Number.isSafeInteger(o.step) || o.step < 0) {
    throw new Error(`${FN}: step must be an integer >= 0 (0 for SFT), got ${String(o.step)}.`);
  }
  for (const key of ['policy', 'sft'] as const) {
    if (typeof o[key]?.forward !== 'function') throw new Error(`${FN}: ${key} must be a CausalLM.`);
  }
  if (o.policy.config.vocab_size !== o.sft.config.vocab_size) {
    throw new Error(
      `${FN}: policy and sft have different vocab sizes (${o.policy.config.vocab_size} vs ${o.sft.config.vocab_size}); ` +
        'the KL needs the same tokenizer.',
    );
  }
  for (const key of ['proxy', 'gold', 'judge'] as const) {
    if (typeof o[key]?.score !== 'function') {
      throw new Error(`${FN}: ${key} must be a RewardFunction (an object with score()).`);
    }
  }
  if (typeof o.tokenizer?.decode !== 'function') throw new Error(`${FN}: tokenizer must have decode(ids).`);
  const { tokens, texts } = o.prompts ?? ({} as EvalPrompts);
  if (!Array.isArray(tokens) || !Array.isArray(texts) || tokens.length === 0) {
    throw new Error(`${FN}: prompts must be { tokens: token arrays, texts: strings }, non-empty.`);
  }
  if (tokens.length !== texts.length) {
    throw new Error(
      `${FN}: prompts.tokens has ${tokens.length} prompts but prompts.texts has ${texts.length}; give both for every prompt.`,
    );
  }
  const records = o.prompts.records;
  if (records !== undefined && (!Array.isArray(records) || records.length !== tokens.length)) {
    throw new Error(`${FN}: prompts.records must have one record per prompt (${tokens.length}).`);
  }
  const g = o.generation;
  if (g === null || typeof g !== 'object') throw new Error(`${FN}: generation options are required.`);
  const tau = g.temperature ?? 1;
  if (!(typeof tau === 'number' && tau > 0 && Number.isFinite(tau))) {
    throw new Error(
      `${FN}: generation.temperature must be > 0 (got ${String(tau)}): KL to SFT needs full log-probs at τ (docs/algorithms.md §4.2).`,
    );
  }
  if ((g.topK ?? 0) !== 0 || (g.topP ?? 1) !== 1) {
    throw new Error(
      `${FN}: generation.topK/topP must be off (0 / 1), got ${String(g.topK)} / ${String(g.topP)}: the KL to SFT ` +
        'is measured on samples from π_θ itself (docs/algorithms.md §1.11), which truncated sampling is not.',
    );
  }
  const batchSize = o.batchSize ?? 32;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new Error(`${FN}: batchSize must be an integer >= 1, got ${String(batchSize)}.`);
  }
  return { batchSize, n: tokens.length };
}

/** Host copy of `computeLogprobs(model, batch)`; no tensors remain. */
async function logprobs(model: CausalLM, batch: RolloutBatch): Promise<Float32Array> {
  const lp = computeLogprobs(model, batch);
  try {
    return (await lp.data()) as Float32Array;
  } finally {
    lp.dispose();
  }
}

/** Response texts as a reader sees them: decoded, without the stop token. */
function responseTexts(batch: RolloutBatch, tokenizer: EvalTokenizer): string[] {
  const { batchSize: B, responseWidth: Tr } = batch;
  const out: string[] = [];
  for (let b = 0; b < B; b++) {
    const len = batch.responseLengths[b]! - (batch.endedWithEos[b] ? 1 : 0);
    out.push(tokenizer.decode(batch.responseTokens.subarray(b * Tr, b * Tr + len)));
  }
  return out;
}

/** What the scorers of rows `start..end` receive: prompt texts, records when given, the tokenizer. */
function scoreContext(o: EvaluatePolicyOptions, start: number, end: number) {
  return {
    promptTexts: o.prompts.texts.slice(start, end),
    ...(o.prompts.records ? { promptRecords: o.prompts.records.slice(start, end) } : {}),
    tokenizer: o.tokenizer,
  };
}

/** Samples one response per prompt of a chunk and scores it with proxy and judge. */
async function sampleAndScore(
  model: CausalLM,
  o: EvaluatePolicyOptions,
  start: number,
  end: number,
  chunk: number,
): Promise<Scored> {
  const batch = await generate(model, o.prompts.tokens.slice(start, end), {
    ...o.generation,
    responsesPerPrompt: 1,
    seed: `${String(o.seed)}/eval/${chunk}`,
  });
  const context = scoreContext(o, start, end);
  const proxy = await scoreBatch(o.proxy, batch, context);
  const judge = await scoreBatch(o.judge, batch, context);
  return { batch, responses: responseTexts(batch, o.tokenizer), proxy, judge };
}

/**
 * Evaluates a policy: one sampled response per prompt (seeded, temperature τ, no top-k/top-p), scored by
 * the proxy reward, the gold labeler and the judge; KL to SFT as the mean over samples of the k1 sequence
 * sum `Σ_t log π_θ(y_t) − log π_SFT(y_t)` with both log-probs recomputed at τ on the policy's own samples
 * (docs/algorithms.md §1.11 [CHOICE]: unbiased for KL(π_θ‖π_SFT)); response length, EOS rate, distinct-1/2 and
 * repetition over {@link textTokens} of the responses; win rates against SFT by proxy and by judge (ties ½).
 *
 * Deterministic: the same models, prompts, options and seed give the same result on a backend.
 * No tensors remain allocated.
 *
 * @returns the {@link EvalResult} (without head-to-head rates: see `addHeadToHead`) and one
 *   {@link SampleRecord} per prompt, in prompt order.
 * @throws Error naming the option that is invalid, or the reward function and row of a non-finite score.
 */
export async function evaluatePolicy(o: EvaluatePolicyOptions): Promise<Evaluation> {
  const t0 = performance.now();
  const { batchSize, n } = validate(o);
  const isSft = o.policy === o.sft;
  if (o.baseline !== undefined) checkBaseline(o.baseline, o.prompts.texts);

  const samples: SampleRecord[] = [];
  const greedy: number[] = [];
  const sftProxy: number[] = [];
  const sftJudge: number[] = [];
  for (let start = 0, chunk = 0; start < n; start += batchSize, chunk++) {
    const end = Math.min(n, start + batchSize);
    const s = await sampleAndScore(o.policy, o, start, end, chunk);
    const { batch } = s;
    const gold = await scoreBatch(o.gold, batch, scoreContext(o, start, end));
    if (o.greedyGold) {
      const argmax = await generate(o.policy, o.prompts.tokens.slice(start, end), {
        ...o.generation,
        temperature: 0,
        responsesPerPrompt: 1,
        seed: 0,
      });
      greedy.push(...(await scoreBatch(o.gold, argmax, scoreContext(o, start, end))));
    }
    // k1 sequence sums (docs/algorithms.md §1.11). For SFT itself every term is exactly 0: skip both passes.
    let kl: Float64Array;
    if (isSft) {
      kl = new Float64Array(batch.batchSize);
    } else {
      const lp = await logprobs(o.policy, batch);
      const ref = await logprobs(o.sft, batch);
      kl = sequenceKl(lp, ref, batch.responseLengths, batch.responseWidth, 'k1');
    }
    for (let b = 0; b < batch.batchSize; b++) {
      samples.push({
        prompt: o.prompts.texts[start + b]!,
        response: s.responses[b]!,
        gold: gold[b]!,
        judge: s.judge[b]!,
        proxy: s.proxy[b]!,
        kl: kl[b]!,
        length: batch.responseLengths[b]!,
        eos: batch.endedWithEos[b] === 1,
      });
    }
    if (!isSft && o.baseline === undefined) {
      // No SFT samples given: sample SFT on the same prompts with the same seed.
      const base = await sampleAndScore(o.sft, o, start, end, chunk);
      sftProxy.push(...base.proxy);
      sftJudge.push(...base.judge);
    }
  }
  const baseline = isSft
    ? { proxy: samples.map((r) => r.proxy), judge: samples.map((r) => r.judge) }
    : o.baseline !== undefined
      ? { proxy: o.baseline.samples.map((r) => r.proxy), judge: o.baseline.samples.map((r) => r.judge) }
      : { proxy: sftProxy, judge: sftJudge };

  const words = samples.map((r) => textTokens(r.response));
  const result: EvalResult = {
    name: o.name,
    algo: o.algo,
    step: o.step,
    ...(o.klCoef !== undefined ? { klCoef: o.klCoef } : {}),
    ...(o.trainSeed !== undefined ? { seed: o.trainSeed } : {}),
    n,
    gold: meanStd(o.greedyGold ? greedy : samples.map((r) => r.gold), 'gold scores'),
    ...(o.greedyGold
      ? {
          goldSampled: meanStd(
            samples.map((r) => r.gold),
            'gold scores',
          ),
        }
      : {}),
    judge: meanStd(
      samples.map((r) => r.judge),
      'judge scores',
    ),
    proxy: meanStd(
      samples.map((r) => r.proxy),
      'proxy scores',
    ),
    klToSft: meanStd(
      samples.map((r) => r.kl),
      'KL to SFT',
    ),
    length: { mean: samples.reduce((a, r) => a + r.length, 0) / n },
    eosRate: samples.filter((r) => r.eos).length / n,
    distinct1: distinctN(words, 1),
    distinct2: distinctN(words, 2),
    repetition: repetition(words, 2),
    winRates: {
      vsSft: {
        proxy: winRate(
          samples.map((r) => r.proxy),
          baseline.proxy,
        ),
        judge: winRate(
          samples.map((r) => r.judge),
          baseline.judge,
        ),
      },
    },
    seconds: (performance.now() - t0) / 1000,
  };
  return { result, samples };
}

function checkBaseline(baseline: BaselineSamples, texts: readonly string[]): void {
  const rows = baseline?.samples;
  if (!Array.isArray(rows)) throw new Error(`${FN}: baseline.samples must be an array of sample records.`);
  if (rows.length !== texts.length) {
    throw new Error(
      `${FN}: baseline has ${rows.length} samples but there are ${texts.length} prompts; win rates compare ` +
        'responses to the same prompts (evaluate SFT on these prompts first).',
    );
  }
  rows.forEach((r, i) => {
    if (r.prompt !== texts[i]) {
      throw new Error(
        `${FN}: baseline sample ${i} answers ${JSON.stringify(r.prompt)} but prompt ${i} is ${JSON.stringify(texts[i])}; ` +
          'use the same prompts in the same order.',
      );
    }
  });
}
