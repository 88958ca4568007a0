/**
 * Conversations -> text and token ids with a tokenizer's chat template, for TRL's conversational formats:
 * `{"messages"}` (loss on the assistant turns only), `{"prompt": [...], "completion": [...]}` and preference
 * rows `{"prompt", "chosen", "rejected"}` whose fields are message lists.
 */
import type { ChatMessage, ChatTemplateOptions } from '../tokenizer/chat-template.js';
import { checkMessages } from '../tokenizer/chat-template.js';
import type { PromptCompletion } from './jsonl.js';
import type { TextTokenizer } from './tokenize.js';

/** A tokenizer that renders chat templates (`HfTokenizer` of `loadTokenizer`). */
export interface ChatTokenizer extends TextTokenizer {
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
  /** The string of a token id (to find the EOS text at the end of a rendered turn). */
  idToToken?(id: number): string | undefined;
}

/** The tokenizer as a {@link ChatTokenizer}, or an error naming `where` and the fix. */
export function asChatTokenizer(tokenizer: TextTokenizer, where: string): ChatTokenizer {
  const t = tokenizer as Partial<ChatTokenizer>;
  if (typeof t.applyChatTemplate !== 'function') {
    throw new Error(
      `${where} is conversational (message lists) but the tokenizer has no chat template: load the model's ` +
        'tokenizer.json folder with loadTokenizer (an HfTokenizer whose tokenizer_config.json has a chat_template), ' +
        'or store the rows as text.',
    );
  }
  return tokenizer as ChatTokenizer;
}

function render(
  tok: ChatTokenizer,
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
  where: string,
): string {
  try {
    return tok.applyChatTemplate(messages, { addGenerationPrompt });
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * `text` without its final end-of-turn EOS (and the whitespace after it), so that the text pipeline's
 * `completion ++ [eos]` gives back the template's turn end once, not twice.
 */
function withoutFinalEos(tok: ChatTokenizer, text: string): string {
  const eos = tok.idToToken?.(tok.eosId);
  if (eos === undefined || eos === '') return text;
  const trimmed = text.trimEnd();
  return trimmed.endsWith(eos) ? trimmed.slice(0, -eos.length) : text;
}

/**
 * A conversational prompt/completion as text: the prompt rendered with the generation prompt, the completion
 * the rest of the whole conversation's rendering, without its final EOS (the tokenizing step appends it).
 * @throws Error naming `where` when the template renders the prompt differently once the completion follows.
 */
export function renderChatPromptCompletion(
  tokenizer: TextTokenizer,
  prompt: readonly ChatMessage[],
  completion: readonly ChatMessage[],
  where: string,
): PromptCompletion {
  const tok = asChatTokenizer(tokenizer, where);
  checkMessages(prompt, `${where}: field "prompt"`);
  checkMessages(completion, `${where}: field "completion"`);
  const p = render(tok, prompt, true, where);
  const full = render(tok, [...prompt, ...completion], false, where);
  if (!full.startsWith(p)) {
    throw new Error(
      `${where}: the chat template renders the prompt differently when the completion follows it, so the ` +
        'completion cannot be split off; store this row as {"messages": [...]} instead.',
    );
  }
  return { prompt: p, completion: withoutFinalEos(tok, full.slice(p.length)) };
}

/** The length of the longest common prefix of two sequences. */
function commonPrefix(a: ArrayLike<number> | string, b: ArrayLike<number> | string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** A tokenized conversation: the ids, and 1 on the tokens of the assistant turns (the loss targets). */
export interface TokenizedConversation {
  ids: number[];
  targetMask: Uint8Array;
}

/**
 * Tokenizes a whole conversation and marks the assistant turns, by rendering the template incrementally:
 * assistant turn `i` starts where `messages[:i]` rendered with the generation prompt ends, and ends where
 * `messages[:i+1]` rendered stops agreeing with the whole conversation (after any text the template puts only
 * on a final turn, such as Qwen3's empty think block, is matched from its end). Character positions become
 * token positions through the tokens the prefixes share with the whole, so a token that straddles the start
 * of a turn is trained and one that straddles its end is not.
 *
 * Templates that append the assistant header even without `add_generation_prompt` (the base Llama 3 one)
 * also mark that header's first token.
 * @throws Error naming `where` for malformed messages, no assistant message, or a template error.
 */
export function tokenizeConversation(
  tokenizer: TextTokenizer,
  messages: readonly ChatMessage[],
  where: string,
): TokenizedConversation {
  const tok = asChatTokenizer(tokenizer, where);
  checkMessages(messages, `${where}: field "messages"`);
  if (!messages.some((m) => m.role === 'assistant')) {
    throw new Error(`${where}: field "messages" has no assistant message, so nothing would be trained.`);
  }
  const full = render(tok, messages, false, where);
  const ids = tok.encode(full);
  const targetMask = new Uint8Array(ids.length);
  const tokenAt = (chars: number) => commonPrefix(ids, tok.encode(full.slice(0, chars)));
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = i === 0 ? '' : render(tok, messages.slice(0, i), true, where);
    if (!full.startsWith(before)) {
      throw new Error(
        `${where}: messages[${i}]: the chat template renders the conversation before this assistant turn ` +
          'differently from the whole conversation, so its tokens cannot be located.',
      );
    }
    const upto = render(tok, messages.slice(0, i + 1), false, where);
    const agree = commonPrefix(upto, full);
    let tail = 0; // the end of `upto` found right after the point where it stopped agreeing
    for (let k = upto.length - agree; k > 0; k--) {
      if (full.startsWith(upto.slice(upto.length - k), agree)) {
        tail = k;
        break;
      }
    }
    const start = tokenAt(before.length);
    const end = Math.max(start, tokenAt(agree + tail));
    targetMask.fill(1, start, end);
  });
  return { ids, targetMask };
}

/** Preference rows with message lists, rendered to the text form `{prompt, chosen, rejected}`. */
export function renderChatPreference(
  tokenizer: TextTokenizer,
  row: { prompt: unknown; chosen: unknown; rejected: unknown },
  where: string,
): { prompt: string; chosen: string; rejected: string } {
  const prompt = checkMessages(row.prompt, `${where}: field "prompt"`);
  const chosen = renderChatPromptCompletion(
    tokenizer,
    prompt,
    checkMessages(row.chosen, `${where}: field "chosen"`),
    where,
  );
  const rejected = renderChatPromptCompletion(
    tokenizer,
    prompt,
    checkMessages(row.rejected, `${where}: field "rejected"`),
    where,
  );
  return { prompt: chosen.prompt, chosen: chosen.completion, rejected: rejected.completion };
}
