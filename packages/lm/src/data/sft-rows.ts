/**
 * SFT datasets in every TRL format: `{"prompt", "completion"}` as text, the same with message lists
 * (conversational prompt-completion), and `{"messages": [...]}` (conversational language modeling, trained on
 * the assistant turns only). Rows may be read from JSONL ({@link readSftJsonl}) or given in memory.
 */
import { checkMessages, type ChatMessage } from '../tokenizer/chat-template.js';
import { renderChatPromptCompletion, tokenizeConversation } from './chat.js';
import { jsonTypeName, readJsonl, type JsonlText } from './jsonl-reader.js';
import type { PromptCompletion } from './jsonl.js';
import { fitExample, type TextTokenizer, type TokenizeOptions, type TokenizeResult } from './tokenize.js';

/** Conversational prompt-completion: the completion messages are trained, the prompt is not. */
export interface ChatPromptCompletion {
  prompt: ChatMessage[];
  completion: ChatMessage[];
}

/** A whole conversation: its assistant turns are trained. */
export interface Conversation {
  messages: ChatMessage[];
}

/** One SFT row. */
export type SftRow = PromptCompletion | ChatPromptCompletion | Conversation;

// Where each row read from a file came from ("data.jsonl line 3"), for errors raised when it is tokenized.
const origin = new WeakMap<object, string>();

/**
 * Checks one row (from JSONL or memory) and returns it typed.
 * @throws Error `"<where>: field ..."` naming the field and the fix.
 */
export function parseSftRow(obj: Record<string, unknown>, where: string): SftRow {
  if ('messages' in obj) {
    return { messages: checkMessages(obj.messages, `${where}: field "messages"`) };
  }
  for (const field of ['prompt', 'completion'] as const) {
    if (!(field in obj)) {
      throw new Error(
        `${where}: field "${field}" is missing. Rows are {"prompt", "completion"} (text or message lists) or ` +
          '{"messages": [...]}.',
      );
    }
  }
  const { prompt, completion } = obj;
  if (typeof prompt === 'string' && typeof completion === 'string') return { prompt, completion };
  if (Array.isArray(prompt) && Array.isArray(completion)) {
    return {
      prompt: checkMessages(prompt, `${where}: field "prompt"`),
      completion: checkMessages(completion, `${where}: field "completion"`),
    };
  }
  throw new Error(
    `${where}: fields "prompt" and "completion" must both be strings or both be message lists, got ` +
      `${jsonTypeName(prompt)} and ${jsonTypeName(completion)}.`,
  );
}

/**
 * Reads an SFT JSONL file (or `{ text, source? }`) in any of the formats of {@link SftRow}.
 * @throws Error `"<path> line <n>: field ..."` for a malformed row (missing role/content, unknown role,
 *   empty message list, mixed text and messages).
 */
export async function readSftJsonl(input: string | JsonlText): Promise<SftRow[]> {
  const rows: SftRow[] = [];
  for await (const { value, where } of readJsonl(input, {
    shape: '{"prompt", "completion"} or {"messages": [...]}',
    caller: 'readSftJsonl',
  })) {
    const row = parseSftRow(value, where);
    origin.set(row, where);
    rows.push(row);
  }
  return rows;
}

/**
 * Tokenizes SFT rows. Text rows follow `tokenizePromptCompletion`. Conversational prompt-completion rows are
 * rendered with the chat template (the prompt with the generation prompt) and then follow the same rules, the
 * template's final end-of-turn EOS standing for the appended one. `{"messages"}` rows are rendered whole and
 * carry a `targetMask` on their assistant turns; one longer than `maxLength` is dropped, or with
 * `overflow: 'truncate'` cut from the right (counted in `completionTruncated`). The chat template supplies
 * BOS for conversational rows: `addBos` applies to text rows only.
 * @throws Error naming the file and line (or `data[i]`) of a malformed row, or a tokenizer without a chat
 *   template for conversational rows.
 */
export function tokenizeSftRows(
  rows: readonly SftRow[],
  tokenizer: TextTokenizer,
  options: TokenizeOptions,
): TokenizeResult {
  const { maxLength, overflow = 'drop', addBos = false } = options;
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new Error(`tokenizeSftRows: maxLength must be an integer >= 2 (got ${maxLength}).`);
  }
  if (!Number.isInteger(tokenizer.eosId) || tokenizer.eosId < 0) {
    throw new Error(`tokenizeSftRows: tokenizer.eosId must be a token id (got ${tokenizer.eosId}).`);
  }
  const bos = addBos ? tokenizer.bosId : undefined;
  if (addBos && bos === undefined) {
    throw new Error('tokenizeSftRows: addBos is set but the tokenizer has no bosId.');
  }
  const result: TokenizeResult = {
    examples: [],
    promptTruncated: 0,
    completionTruncated: 0,
    dropped: 0,
    kept: [],
  };
  const fit = { maxLength, overflow };
  rows.forEach((raw, i) => {
    const where = (raw !== null && typeof raw === 'object' && origin.get(raw)) || `data[${i}]`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new Error(`tokenizeSftRows: ${where} must be an object, got ${jsonTypeName(raw)}.`);
    }
    const row = parseSftRow(raw as unknown as Record<string, unknown>, where);
    if ('messages' in row) {
      const { ids, targetMask } = tokenizeConversation(tokenizer, row.messages, where);
      let length = ids.length;
      if (length > maxLength) {
        if (overflow === 'drop') {
          result.dropped++;
          return;
        }
        length = maxLength;
        result.completionTruncated++;
      }
      const mask = targetMask.slice(0, length);
      const first = mask.indexOf(1);
      result.examples.push({
        ids: Int32Array.from(ids.slice(0, length)),
        promptLength: first < 0 ? length : first,
        length,
        targetMask: mask,
      });
      result.kept.push(i);
      return;
    }
    const pc =
      typeof row.prompt === 'string'
        ? (row as PromptCompletion)
        : renderChatPromptCompletion(tokenizer, row.prompt, row.completion as ChatMessage[], where);
    const head = typeof row.prompt === 'string' ? bos : undefined;
    fitExample(
      result,
      i,
      tokenizer.encode(pc.prompt),
      tokenizer.encode(pc.completion),
      head,
      tokenizer.eosId,
      fit,
    );
  });
  return result;
}
