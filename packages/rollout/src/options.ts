/**
 * Sampling options of {@link generate} and their validation.
 *
 * The distribution a token is drawn from (docs/algorithms.md §4.2, HF's warper order): `softmax(logits / temperature)`,
 * then top-k, then top-p (nucleus) on the renormalised top-k distribution, then renormalised again.
 */

/** What {@link generate} accepts. */
export interface GenerateOptions {
  /** Most tokens generated per response (>= 1). Rows that reach it without a stop token are `truncated`. */
  maxNewTokens: number;
  /**
   * Softmax temperature τ >= 0. Default 1. τ = 0 is greedy decoding (argmax, lowest id on ties) whose
   * recorded log-probs are 0 (the sampled distribution is a point mass): fine for evaluation, useless for
   * RL ratios (use τ > 0 there, docs/algorithms.md §4.2).
   */
  temperature?: number;
  /** Keep only the k most likely tokens (ties: lower id first). 0 (default) or >= V: off. */
  topK?: number;
  /**
   * Nucleus sampling: keep the smallest set of most likely tokens (after top-k) whose probability reaches
   * topP, at least one token. In (0, 1]; 1 (default): off.
   */
  topP?: number;
  /**
   * Ids that end a response (EOS and any other stop token). The stop token is part of the response and
   * counted in its length (docs/algorithms.md §0: the response mask includes EOS); later positions are padding. May be
   * empty (every response then runs to `maxNewTokens`).
   */
  stopTokenIds: readonly number[];
  /** Responses sampled per prompt (>= 1; P3O and online DPO need 2). Default 1. */
  responsesPerPrompt?: number;
  /** Seed of the sampling stream (`createRng(seed)` of @relign/tensor). */
  seed: number | string;
  /** Version of the policy that samples (e.g. the optimizer step); recorded in the batch. Default 0. */
  policyVersion?: number;
  /** Id written at padded positions (left of prompts, right of responses). Default `stopTokenIds[0] ?? 0`. */
  padTokenId?: number;
}

/** The options a batch was sampled with, every field resolved (stored in {@link RolloutBatch.options}). */
export interface SamplingOptions {
  maxNewTokens: number;
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  stopTokenIds: number[];
  responsesPerPrompt: number;
  seed: number | string;
  padTokenId: number;
}

/** The parameters that define the sampled distribution (a subset of {@link SamplingOptions}). */
export interface DistributionOptions {
  /** τ >= 0 (0: greedy). */
  temperature: number;
  /** 0 or >= V: off. */
  topK: number;
  /** 1: off. */
  topP: number;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates and fills in {@link GenerateOptions} for a model with vocabulary size `vocabSize`.
 * @throws Error naming the offending field and what it accepts.
 */
export function resolveGenerateOptions(
  options: GenerateOptions,
  vocabSize: number,
  fn = 'generate',
): SamplingOptions & { policyVersion: number } {
  if (options === null || typeof options !== 'object') {
    throw new Error(`${fn}: options must be an object {maxNewTokens, stopTokenIds, seed, ...}`);
  }
  const {
    maxNewTokens,
    temperature = 1,
    topK = 0,
    topP = 1,
    stopTokenIds,
    responsesPerPrompt = 1,
    seed,
    policyVersion = 0,
  } = options;
  if (!isNonNegInt(maxNewTokens) || maxNewTokens < 1) {
    throw new Error(`${fn}: options.maxNewTokens must be an integer >= 1, got ${String(maxNewTokens)}`);
  }
  checkDistribution({ temperature, topK, topP }, fn);
  if (!Array.isArray(stopTokenIds)) {
    throw new Error(
      `${fn}: options.stopTokenIds must be an array of token ids (e.g. [tokenizer.eosId]; [] for none), ` +
        `got ${stopTokenIds === undefined ? 'undefined' : typeof stopTokenIds}`,
    );
  }
  for (const id of stopTokenIds) {
    if (!isNonNegInt(id) || id >= vocabSize) {
      throw new Error(
        `${fn}: options.stopTokenIds contains ${String(id)}, not a token id in [0, ${vocabSize}) (vocab_size)`,
      );
    }
  }
  if (!isNonNegInt(responsesPerPrompt) || responsesPerPrompt < 1) {
    throw new Error(
      `${fn}: options.responsesPerPrompt must be an integer >= 1, got ${String(responsesPerPrompt)}`,
    );
  }
  if (typeof seed === 'number' ? !Number.isSafeInteger(seed) : typeof seed !== 'string') {
    throw new Error(`${fn}: options.seed must be a safe integer or a string, got ${String(seed)}`);
  }
  if (!isNonNegInt(policyVersion) || policyVersion > 2 ** 31 - 1) {
    throw new Error(
      `${fn}: options.policyVersion must be an integer in [0, 2^31), got ${String(policyVersion)}`,
    );
  }
  const padTokenId = options.padTokenId ?? stopTokenIds[0] ?? 0;
  if (!isNonNegInt(padTokenId) || padTokenId >= vocabSize) {
    throw new Error(
      `${fn}: options.padTokenId must be a token id in [0, ${vocabSize}) (vocab_size), got ${String(padTokenId)}`,
    );
  }
  return {
    maxNewTokens,
    temperature,
    topK,
    topP,
    stopTokenIds: [...stopTokenIds],
    responsesPerPrompt,
    seed,
    padTokenId,
    policyVersion,
  };
}

/** Validates the distribution parameters (temperature >= 0, topK integer >= 0, topP in (0, 1]). */
export function checkDistribution(d: DistributionOptions, fn: string): void {
  if (typeof d.temperature !== 'number' || !Number.isFinite(d.temperature) || d.temperature < 0) {
    throw new Error(
      `${fn}: temperature must be a finite number >= 0 (0 = greedy), got ${String(d.temperature)}`,
    );
  }
  if (!isNonNegInt(d.topK)) {
    throw new Error(`${fn}: topK must be an integer >= 0 (0 = off), got ${String(d.topK)}`);
  }
  if (typeof d.topP !== 'number' || !(d.topP > 0 && d.topP <= 1)) {
    throw new Error(`${fn}: topP must be in (0, 1] (1 = off), got ${String(d.topP)}`);
  }
}

/** The token roles of a tokenizer that decide when a response ends and what fills the padding. */
export interface StopTokenSource {
  eosId: number;
  /**
   * Every id that ends a response (`HfTokenizer.stopIds`: EOS plus generation_config.json's `eos_token_id`
   * list, e.g. Llama-3 instruct's `<|eot_id|>` and `<|end_of_text|>`). Default `[eosId]`.
   */
  stopIds?: readonly number[];
  /** Padding id. Default `eosId`. */
  padId?: number;
}

/**
 * `stopTokenIds` and `padTokenId` for {@link GenerateOptions} from a tokenizer: an instruct model ends its turn
 * with a token other than its EOS (Llama-3's `<|eot_id|>`), so stopping on `eosId` alone would run every
 * response to `maxNewTokens`. A GPT-2 tokenizer (no `stopIds`, pad = EOS) gives `[eosId]` and `eosId`, the
 * settings relign always used.
 */
export function tokenizerStopOptions(tokenizer: StopTokenSource): {
  stopTokenIds: number[];
  padTokenId: number;
} {
  const stops = tokenizer.stopIds && tokenizer.stopIds.length > 0 ? tokenizer.stopIds : [tokenizer.eosId];
  return { stopTokenIds: [...new Set(stops)], padTokenId: tokenizer.padId ?? tokenizer.eosId };
}
