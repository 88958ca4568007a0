/**
 * Prompt/completion datasets in JSON Lines, TRL's "prompt-completion" convention: one JSON object per line,
 * `{"prompt": "...", "completion": "..."}`, read with {@link readJsonl}.
 */
import { jsonTypeName, readJsonl, type JsonlText } from './jsonl-reader.js';

export type { JsonlText } from './jsonl-reader.js';

/** One supervised example: the model is trained to continue `prompt` with `completion` (then EOS). */
export interface PromptCompletion {
  prompt: string;
  completion: string;
}

/**
 * Reads a prompt/completion JSONL dataset from a file path, or from in-memory text given as `{ text, source? }`.
 *
 * Rules: blank (whitespace-only) lines are skipped; every other line must be a JSON object whose `prompt` and
 * `completion` are strings (either may be empty). Other fields are allowed and ignored, so TRL-style files
 * with extra columns (ids, labels, metadata) load as they are. A Windows `\r\n` line end and a leading
 * UTF-8 byte-order mark are accepted.
 *
 * @throws Error `"<path> line <n>: ..."` naming the 1-based line, the field and the fix.
 */
export async function readPromptCompletionJsonl(input: string | JsonlText): Promise<PromptCompletion[]> {
  const out: PromptCompletion[] = [];
  const records = readJsonl(input, {
    shape: '{"prompt": string, "completion": string}',
    caller: 'readPromptCompletionJsonl',
  });
  for await (const { value: obj, where } of records) {
    for (const field of ['prompt', 'completion'] as const) {
      if (!(field in obj)) {
        throw new Error(`${where}: field "${field}" is missing. Add "${field}": "<text>" (it may be "").`);
      }
      if (typeof obj[field] !== 'string') {
        throw new Error(
          `${where}: field "${field}" must be a string, got ${jsonTypeName(obj[field])}` +
            (Array.isArray(obj[field]) ? ' (conversational rows: read them with readSftJsonl).' : '.'),
        );
      }
    }
    out.push({ prompt: obj.prompt as string, completion: obj.completion as string });
  }
  return out;
}
