/**
 * Preference datasets in JSON Lines, TRL's explicit-prompt preference format: one object per line,
 * `{"prompt": "...", "chosen": "...", "rejected": "..."}`, with an optional numeric `"margin"` (TRL's
 * reward-trainer column).
 */
import {
  jsonTypeName,
  readJsonl,
  renderChatPreference,
  type JsonlText,
  type TextTokenizer,
} from '@relign/lm';
import type { PreferencePair } from './label-pairs.js';

/** One parsed example. */
export interface PreferenceExample extends PreferencePair<string> {
  /** Optional per-pair margin of the loss `−log σ(r_c − r_r − margin)`. */
  margin?: number;
}

/** Options of {@link readPreferenceJsonl}. */
export interface ReadPreferenceOptions {
  /**
   * A pair whose `chosen` equals its `rejected` carries no preference: `'skip'` (default) leaves it out and
   * lists its line in `identicalLines`; `'error'` throws.
   */
  identical?: 'skip' | 'error';
  /**
   * Renders TRL's conversational rows (`prompt`, `chosen`, `rejected` as message lists) with its chat template
   * into the text form (`renderChatPreference` of @relign/lm). Without it such rows are an error.
   */
  tokenizer?: TextTokenizer;
}

/** A parsed dataset. */
export interface PreferenceDataset {
  pairs: PreferenceExample[];
  /** 1-based line numbers of pairs skipped because chosen = rejected. */
  identicalLines: number[];
}

const SHAPE = '{"prompt": string, "chosen": string, "rejected": string}';

/**
 * Reads a preference JSONL file, or in-memory text given as `{ text, source? }`, with @relign/lm's JSONL
 * reader (streamed line by line).
 *
 * Rules: blank lines are skipped; every other line must be a JSON object with string fields `prompt`,
 * `chosen` and `rejected` (the prompt may be "" for prompt-free data); `margin`, when present, must be a
 * finite number; other fields are ignored. TRL's conversational form (message lists) is rendered with
 * `options.tokenizer`'s chat template: the prompt with the generation prompt, each response without its final
 * EOS (the tokenizing step appends it). A `\r\n` line end and a UTF-8 BOM are accepted.
 *
 * @throws Error `"<path> line <n>: field \"<name>\" ..."` naming the 1-based line, the field and the fix;
 *   `"<path> is empty ..."` when the data holds no pair at all (only blank lines).
 */
export async function readPreferenceJsonl(
  input: string | JsonlText,
  options: ReadPreferenceOptions = {},
): Promise<PreferenceDataset> {
  const { identical = 'skip' } = options;
  if (identical !== 'skip' && identical !== 'error') {
    throw new Error(
      `readPreferenceJsonl: identical must be 'skip' or 'error', got ${JSON.stringify(identical)}.`,
    );
  }
  const out: PreferenceDataset = { pairs: [], identicalLines: [] };
  for await (const { value: obj, line, where } of readJsonl(input, {
    shape: SHAPE,
    caller: 'readPreferenceJsonl',
  })) {
    const example = preferenceExample(obj, where, options.tokenizer);
    if (example.chosen === example.rejected) {
      if (identical === 'error') {
        throw new Error(
          `${where}: fields "chosen" and "rejected" are identical, so the pair carries no preference; remove it ` +
            "or read with { identical: 'skip' }.",
        );
      }
      out.identicalLines.push(line);
      continue;
    }
    out.pairs.push(example);
  }
  if (out.pairs.length === 0 && out.identicalLines.length === 0) {
    // Said here, where the file is known: later stages would only see "no training pair fits maxLength".
    const source = typeof input === 'string' ? input : (input.source ?? '<jsonl text>');
    throw new Error(
      `${source} is empty: it holds no preference pair. Each line must be one JSON object ${SHAPE}.`,
    );
  }
  return out;
}

/** The checked example of one line's object. */
function preferenceExample(
  obj: Record<string, unknown>,
  where: string,
  tokenizer: TextTokenizer | undefined,
): PreferenceExample {
  if (tokenizer !== undefined && ['prompt', 'chosen', 'rejected'].some((f) => Array.isArray(obj[f]))) {
    obj = { ...obj, ...renderChatPreference(tokenizer, obj as never, where) };
  }
  for (const field of ['prompt', 'chosen', 'rejected'] as const) {
    if (!(field in obj)) {
      throw new Error(
        `${where}: field "${field}" is missing. Add "${field}": "<text>"` +
          (field === 'prompt' ? ' (use "" when chosen and rejected already contain the prompt).' : '.'),
      );
    }
    const v = obj[field];
    if (typeof v !== 'string') {
      throw new Error(
        `${where}: field "${field}" must be a string, got ${jsonTypeName(v)}` +
          (Array.isArray(v)
            ? ' (conversational rows need a tokenizer with a chat template: pass options.tokenizer).'
            : '.'),
      );
    }
  }
  const example: PreferenceExample = {
    prompt: obj.prompt as string,
    chosen: obj.chosen as string,
    rejected: obj.rejected as string,
  };
  if ('margin' in obj && obj.margin !== null) {
    if (typeof obj.margin !== 'number' || !Number.isFinite(obj.margin)) {
      throw new Error(
        `${where}: field "margin" must be a finite number when present, got ${jsonTypeName(obj.margin)}.`,
      );
    }
    example.margin = obj.margin;
  }
  return example;
}
