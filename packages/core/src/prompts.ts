/**
 * Training and evaluation prompts of the Trainer: token arrays, texts, or records that carry what a reward
 * needs besides the text (the answer of a math problem, the unit tests of a program), as TRL hands a
 * dataset's columns to its reward functions. Each prompt's record goes to the reward function with every
 * response to it (`ScoreOptions.records`, `RowInfo.record` of @relign/reward-model).
 */
import { checkMessages, type ChatMessage, type ChatTemplateOptions } from '@relign/lm';
import type { PromptTokens } from '@relign/rollout';

/** A prompt with any fields a reward function reads, e.g. `{ prompt: '2+3=', answer: '5' }`. */
export interface PromptRecord {
  /**
   * The prompt: text (encoded with the Trainer's `tokenizer`), token ids, or chat messages (TRL's
   * conversational prompts: rendered with the tokenizer's chat template, the generation prompt added).
   */
  prompt: string | PromptTokens | readonly ChatMessage[];
}

/** Prompts as token arrays, with their texts when known (handed to text reward functions). */
export interface PromptData {
  tokens: readonly PromptTokens[];
  texts?: readonly string[];
}

/**
 * Prompts given to the Trainer: an array of records, texts or token arrays (mixed freely), or `{tokens, texts}`.
 * `R` is the records' type; it flows to the reward function (`RewardFunction<R>`).
 */
export type PromptsInput<R extends PromptRecord = PromptRecord> =
  readonly (R | string | PromptTokens | readonly ChatMessage[])[] | PromptData;

/** Encodes prompt texts (`BpeTokenizer` of @relign/lm fits). */
export interface PromptEncoder {
  encode(text: string): ArrayLike<number>;
  /** Renders chat-message prompts (`HfTokenizer` of @relign/lm, from a folder with a chat template). */
  applyChatTemplate?(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}

/** Prompts resolved to token ids, with one record per prompt (the record given, or `{ prompt }`). */
export interface ResolvedPrompts {
  tokens: readonly PromptTokens[];
  /** Texts of all prompts, when every prompt was given as text (or `{tokens, texts}`). */
  texts?: readonly string[];
  records: readonly PromptRecord[];
}

/** A list of chat messages (objects), as opposed to token ids (numbers). */
function isMessages(v: unknown): v is readonly ChatMessage[] {
  return Array.isArray(v) && v.length > 0 && v[0] !== null && typeof v[0] === 'object';
}

function isTokens(v: unknown): v is PromptTokens {
  return (Array.isArray(v) && !isMessages(v)) || v instanceof Int32Array;
}

function checkTokens(t: PromptTokens, where: string): PromptTokens {
  if (t.length === 0)
    throw new Error(`${where} must be a non-empty array of token ids (or a non-empty text).`);
  for (let i = 0; i < t.length; i++) {
    const id = t[i];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`${where}[${i}] must be a token id (an integer >= 0), got ${String(id)}.`);
    }
  }
  return t;
}

/**
 * Resolves `options.<field>` of the Trainer: texts (alone or as a record's `prompt`) are encoded with
 * `tokenizer`.
 *
 * @throws Error naming the field and index of an empty prompt, a value that is not a prompt, or a text
 *   prompt without a tokenizer that can encode.
 */
export function resolvePrompts(
  input: unknown,
  field: string,
  tokenizer: Partial<PromptEncoder> | undefined,
): ResolvedPrompts {
  const where = `Trainer: options.${field}`;
  const shape =
    'a non-empty array of prompts (token arrays, strings, or records { prompt, ...fields }), or { tokens, texts }';
  if (input !== null && typeof input === 'object' && !Array.isArray(input)) {
    const data = input as PromptData;
    if (!Array.isArray(data.tokens) || data.tokens.length === 0)
      throw new Error(`${where} must be ${shape}.`);
    data.tokens.forEach((t, i) => {
      if (!isTokens(t)) throw new Error(`${where}.tokens[${i}] must be an array of token ids.`);
      checkTokens(t, `${where}.tokens[${i}]`);
    });
    if (
      data.texts !== undefined &&
      (!Array.isArray(data.texts) || data.texts.length !== data.tokens.length)
    ) {
      throw new Error(`${where}.texts must have one text per token array (${data.tokens.length}).`);
    }
    return {
      tokens: data.tokens,
      ...(data.texts ? { texts: data.texts } : {}),
      records: data.tokens.map((t, i) => ({ prompt: data.texts?.[i] ?? t })),
    };
  }
  if (!Array.isArray(input) || input.length === 0) throw new Error(`${where} must be ${shape}.`);
  const encode = (text: string, at: string): PromptTokens => {
    if (typeof tokenizer?.encode !== 'function') {
      throw new Error(
        `${at} is text: pass options.tokenizer (e.g. the BpeTokenizer of @relign/lm) to encode it, or give token ids.`,
      );
    }
    const ids = tokenizer.encode(text);
    return checkTokens(
      ids instanceof Int32Array || Array.isArray(ids) ? ids : Array.from(ids),
      `${at} encoded`,
    );
  };
  const render = (messages: unknown, at: string): string => {
    const checked = checkMessages(messages, at);
    if (typeof tokenizer?.applyChatTemplate !== 'function') {
      throw new Error(
        `${at} is a list of chat messages: pass options.tokenizer with a chat template (loadTokenizer of ` +
          "@relign/lm on an instruct model's folder), or give the prompt as text.",
      );
    }
    try {
      return tokenizer.applyChatTemplate(checked, { addGenerationPrompt: true });
    } catch (e) {
      throw new Error(`${at}: ${(e as Error).message}`, { cause: e });
    }
  };
  const tokens: PromptTokens[] = [];
  const texts: string[] = [];
  const records: PromptRecord[] = [];
  input.forEach((item: unknown, i) => {
    const at = `${where}[${i}]`;
    let prompt: unknown = item;
    let record: PromptRecord = { prompt: item as string | PromptTokens };
    if (item !== null && typeof item === 'object' && !isTokens(item) && !isMessages(item)) {
      if (!('prompt' in item)) {
        throw new Error(`${at} is a record without a 'prompt' field; records are { prompt, ...fields }.`);
      }
      record = item as PromptRecord;
      prompt = record.prompt;
    }
    const rat = record === item ? `${at}.prompt` : at;
    if (typeof prompt === 'string') {
      tokens.push(encode(prompt, rat));
      texts.push(prompt);
    } else if (isMessages(prompt)) {
      const text = render(prompt, rat);
      tokens.push(encode(text, rat));
      texts.push(text);
    } else if (isTokens(prompt)) {
      tokens.push(checkTokens(prompt, rat));
    } else {
      throw new Error(
        `${rat} must be a string, an array of token ids or a list of chat messages, got ${prompt === null ? 'null' : typeof prompt}.`,
      );
    }
    records.push(record);
  });
  return { tokens, ...(texts.length === tokens.length ? { texts } : {}), records };
}
