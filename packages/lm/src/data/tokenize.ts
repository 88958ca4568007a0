/**
 * Prompt/completion examples -> token ids for causal-LM fine-tuning (SFT, docs/algorithms.md §0's causal shift).
 *
 * An example is `prompt ids ++ completion ids ++ [eos]`. The loss later covers the completion and the EOS,
 * located by `promptLength` and `length` — never by looking for pad or EOS ids, because with GPT-2-style
 * tokenizers `pad == eos` and the EOS that ends a completion must be trained.
 */
import type { PromptCompletion } from './jsonl.js';

/**
 * What the data pipeline needs from a tokenizer: `BpeTokenizer` and `HfTokenizer` (both from `loadTokenizer`)
 * satisfy it. Conversational rows further need `applyChatTemplate` (`ChatTokenizer`).
 */
export interface TextTokenizer {
  encode(text: string): number[];
  readonly eosId: number;
  readonly padId: number;
  readonly bosId?: number | undefined;
}

/** One tokenized example. `ids[0 .. promptLength)` is the prompt, `ids[promptLength .. length)` the completion + EOS. */
export interface TokenizedExample {
  /** Token ids, `length` of them. */
  ids: Int32Array;
  /** Number of prompt tokens (BOS included when added). 0 for an unconditional text. */
  promptLength: number;
  /** `ids.length`. */
  length: number;
  /**
   * 1 on the tokens that are training targets, when they are not simply `[promptLength, length)`: the
   * assistant turns of a multi-turn conversation (`tokenizeSftRows`). `collate` uses it when present.
   */
  targetMask?: Uint8Array;
}

export interface TokenizeOptions {
  /** Longest allowed example (the model's `n_positions`). */
  maxLength: number;
  /**
   * When `completion + EOS` alone is longer than `maxLength` (after the prompt was cut to nothing):
   * `'drop'` (default) skips the example and counts it; `'truncate'` keeps the first `maxLength` completion
   * tokens **without** EOS (the response did not end there, so the model must not learn to stop there) and
   * counts it in `completionTruncated`.
   */
  overflow?: 'drop' | 'truncate';
  /** Prepend the tokenizer's BOS id to every prompt (it then always survives prompt truncation). Default false. */
  addBos?: boolean;
}

export interface TokenizeResult {
  examples: TokenizedExample[];
  /** Examples whose prompt lost tokens from its start to fit `maxLength`. */
  promptTruncated: number;
  /** Examples whose completion was cut (only with `overflow: 'truncate'`; those have no EOS). */
  completionTruncated: number;
  /** Examples skipped because `completion + EOS` does not fit (with `overflow: 'drop'`). */
  dropped: number;
  /** Indices (into the input) of the examples kept, in order. */
  kept: number[];
}

/**
 * Tokenizes prompt/completion pairs and fits each into `maxLength` tokens.
 *
 * Truncation policy (documented, counted, never silent):
 * 1. The prompt is cut **from the left** (its end, nearest the completion, is kept; a BOS stays first).
 * 2. If `completion + EOS` still does not fit, the example is dropped (default) or, with
 *    `overflow: 'truncate'`, its completion is cut from the right and has no EOS.
 * Prompt and completion are encoded separately (so the boundary is exact) and concatenated.
 *
 * @throws Error when `maxLength` is not an integer >= 2, or `tokenizer.eosId` is not a token id.
 */
export function tokenizePromptCompletion(
  data: readonly PromptCompletion[],
  tokenizer: TextTokenizer,
  options: TokenizeOptions,
): TokenizeResult {
  const { maxLength, overflow = 'drop', addBos = false } = options;
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new Error(
      `tokenizePromptCompletion: maxLength must be an integer >= 2 (got ${maxLength}); use the model's n_positions.`,
    );
  }
  if (overflow !== 'drop' && overflow !== 'truncate') {
    throw new Error(
      `tokenizePromptCompletion: overflow must be 'drop' or 'truncate' (got ${JSON.stringify(overflow)}).`,
    );
  }
  if (!Number.isInteger(tokenizer.eosId) || tokenizer.eosId < 0) {
    throw new Error(`tokenizePromptCompletion: tokenizer.eosId must be a token id (got ${tokenizer.eosId}).`);
  }
  const bos = addBos ? tokenizer.bosId : undefined;
  if (addBos && (bos === undefined || !Number.isInteger(bos) || bos < 0)) {
    throw new Error(
      'tokenizePromptCompletion: addBos is set but the tokenizer has no bosId; give it a bos special token.',
    );
  }
  const result: TokenizeResult = {
    examples: [],
    promptTruncated: 0,
    completionTruncated: 0,
    dropped: 0,
    kept: [],
  };
  data.forEach((ex, i) => {
    if (
      ex === null ||
      typeof ex !== 'object' ||
      typeof ex.prompt !== 'string' ||
      typeof ex.completion !== 'string'
    ) {
      throw new Error(`tokenizePromptCompletion: data[${i}] must be {prompt: string, completion: string}.`);
    }
    fitExample(
      result,
      i,
      tokenizer.encode(ex.prompt),
      tokenizer.encode(ex.completion),
      bos,
      tokenizer.eosId,
      {
        maxLength,
        overflow,
      },
    );
  });
  return result;
}

/**
 * Fits one `[bos] ++ prompt ++ completion ++ [eos]` example into `maxLength` by the rules of
 * {@link tokenizePromptCompletion} and adds it (or the count of its dropping) to `result`.
 */
export function fitExample(
  result: TokenizeResult,
  index: number,
  promptIds: number[],
  completionIds: number[],
  bos: number | undefined,
  eosId: number,
  options: { maxLength: number; overflow: 'drop' | 'truncate' },
): void {
  const { maxLength, overflow } = options;
  let prompt = promptIds;
  let completion = completionIds;
  const head = bos === undefined ? [] : [bos];
  let withEos = true;
  const room = maxLength - head.length; // room for prompt + completion + eos
  if (completion.length + 1 > room) {
    if (overflow === 'drop') {
      result.dropped++;
      return;
    }
    completion = completion.slice(0, room);
    withEos = false;
    result.completionTruncated++;
  }
  const tail = completion.length + (withEos ? 1 : 0);
  if (prompt.length + tail > room) {
    prompt = prompt.slice(prompt.length - (room - tail));
    result.promptTruncated++;
  }
  const promptLength = head.length + prompt.length;
  const length = promptLength + tail;
  const ids = new Int32Array(length);
  ids.set(head, 0);
  ids.set(prompt, head.length);
  ids.set(completion, promptLength);
  if (withEos) ids[length - 1] = eosId;
  result.examples.push({ ids, promptLength, length });
  result.kept.push(index);
}
