/**
 * Chat templates: the Jinja template a model's `tokenizer_config.json` (or `chat_template.jinja`) ships,
 * rendered with `@huggingface/jinja` the way `transformers`' `apply_chat_template` renders it: with
 * `messages`, `add_generation_prompt`, `tools`, and the tokenizer's special-token strings (`bos_token`,
 * `eos_token`, ...) in the context.
 */
import { Template } from '@huggingface/jinja';

/** The roles relign accepts in a conversation (TRL's conversational formats). */
export const CHAT_ROLES = ['system', 'user', 'assistant', 'tool'] as const;
export type ChatRole = (typeof CHAT_ROLES)[number];

/** One message of a conversation. Extra fields (`tool_calls`, `name`, `reasoning_content`) reach the template. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
  [field: string]: unknown;
}

/** Options of `applyChatTemplate`. */
export interface ChatTemplateOptions {
  /** Append the header that opens the assistant's turn (a prompt to generate from). Default false. */
  addGenerationPrompt?: boolean;
  /** Tool (function) schemas, JSON-schema objects as in `transformers`; templates without tool support ignore them. */
  tools?: readonly unknown[];
  /** Further template variables (e.g. `{ enable_thinking: false }` for Qwen3). */
  extra?: Record<string, unknown>;
}

/** `null`, `an array`, or the `typeof`: how messages name what a value was. */
function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/**
 * Checks that `value` is a non-empty list of `{role, content}` messages with known roles and string content.
 * @param where how the message starts, e.g. `"data.jsonl line 3: field \"messages\""`.
 * @throws Error naming the message index and the field, and the fix.
 */
export function checkMessages(value: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new Error(
      `${where} must be a non-empty list of messages [{"role": "user", "content": "..."}, ...], got ` +
        (Array.isArray(value) ? 'an empty list' : typeName(value)) +
        '.',
    );
  }
  value.forEach((m: unknown, i) => {
    const at = `${where}[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      throw new Error(`${at} must be an object {"role": ..., "content": ...}, got ${typeName(m)}.`);
    }
    const msg = m as Record<string, unknown>;
    if (!('role' in msg)) throw new Error(`${at} has no "role"; add one of ${CHAT_ROLES.join(', ')}.`);
    if (typeof msg.role !== 'string' || !(CHAT_ROLES as readonly string[]).includes(msg.role)) {
      throw new Error(`${at}.role is ${JSON.stringify(msg.role)}, not one of ${CHAT_ROLES.join(', ')}.`);
    }
    if (!('content' in msg)) throw new Error(`${at} has no "content"; add "content": "<text>".`);
    if (typeof msg.content !== 'string') {
      throw new Error(
        `${at}.content must be a string, got ${typeName(msg.content)} (multimodal content lists are not supported).`,
      );
    }
  });
  return value as ChatMessage[];
}

// Parsing a template is far dearer than rendering it, and the data pipeline renders each template many times.
const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (t === undefined) {
    t = new Template(source);
    if (compiled.size >= 16) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/**
 * Renders `messages` with a Jinja chat template.
 * @param specials the special-token strings the template may read (`bos_token`, `eos_token`, `pad_token`, ...).
 * @throws Error on invalid messages, or when the template fails (its own `raise_exception` message included).
 */
export function renderChatTemplate(
  template: string,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
  specials: Record<string, string | undefined> = {},
): string {
  checkMessages(messages, 'applyChatTemplate: messages');
  const context: Record<string, unknown> = {
    ...specials,
    ...options.extra,
    messages,
    add_generation_prompt: options.addGenerationPrompt ?? false,
  };
  if (options.tools !== undefined) context.tools = options.tools;
  try {
    return compile(template).render(context);
  } catch (e) {
    throw new Error(`applyChatTemplate: the chat template failed: ${(e as Error).message}`, { cause: e });
  }
}
