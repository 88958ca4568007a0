/**
 * Prompt/completion datasets in JSON Lines, TRL's "prompt-completion" convention: one JSON object per line,
 * `{"prompt": "...", "completion": "..."}`.
 */
import { readFile } from 'node:fs/promises';

/** One supervised example: the model is trained to continue `prompt` with `completion` (then EOS). */
export interface PromptCompletion {
  prompt: string;
  completion: string;
}

/** In-memory JSONL text, with a name for error messages. */
export interface JsonlText {
  text: string;
  /** What error messages call the data (default `'<jsonl text>'`). */
  source?: string;
}

/**
 * Parses prompt/completion JSONL text.
 *
 * Rules: blank (whitespace-only) lines are skipped; every other line must be a JSON object whose `prompt` and
 * `completion` are strings (either may be empty). Other fields are allowed and ignored, so TRL-style files
 * with extra columns (ids, labels, metadata) load as they are. A Windows `\r\n` line end and a leading
 * UTF-8 byte-order mark are accepted.
 *
 * @param text the file content.
 * @param source what error messages call the data (a path, or `'<jsonl text>'`).
 * @throws Error `"<source> line <n>: ..."` naming the 1-based line, the field and the fix.
 */
export function parsePromptCompletionJsonl(text: string, source = '<jsonl text>'): PromptCompletion[] {
  if (typeof text !== 'string') {
    throw new TypeError(`parsePromptCompletionJsonl: text must be a string, got ${typeof text}.`);
  }
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const out: PromptCompletion[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    if (raw.trim() === '') continue;
    const where = `${source} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new Error(
        `${where}: not valid JSON (${(err as Error).message}). Each line must be one JSON object ` +
          '{"prompt": string, "completion": string}.',
      );
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(
        `${where}: expected a JSON object {"prompt": string, "completion": string}, got ` +
          `${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}.`,
      );
    }
    const obj = value as Record<string, unknown>;
    for (const field of ['prompt', 'completion'] as const) {
      if (!(field in obj)) {
        throw new Error(`${where}: field "${field}" is missing. Add "${field}": "<text>" (it may be "").`);
      }
      if (typeof obj[field] !== 'string') {
        const v = obj[field];
        throw new Error(
          `${where}: field "${field}" must be a string, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}.`,
        );
      }
    }
    out.push({ prompt: obj.prompt as string, completion: obj.completion as string });
  }
  return out;
}

/**
 * Reads a prompt/completion JSONL dataset from a file path, or parses in-memory text given as `{ text }`.
 * See {@link parsePromptCompletionJsonl} for the format and error messages.
 */
export async function readPromptCompletionJsonl(input: string | JsonlText): Promise<PromptCompletion[]> {
  if (typeof input === 'object' && input !== null && typeof input.text === 'string') {
    return parsePromptCompletionJsonl(input.text, input.source ?? '<jsonl text>');
  }
  if (typeof input !== 'string' || input === '') {
    throw new TypeError('readPromptCompletionJsonl: pass a file path, or { text } for in-memory JSONL.');
  }
  let text: string;
  try {
    text = await readFile(input, 'utf8');
  } catch (err) {
    throw new Error(`readPromptCompletionJsonl: cannot read ${input} (${(err as Error).message}).`, {
      cause: err,
    });
  }
  return parsePromptCompletionJsonl(text, input);
}
