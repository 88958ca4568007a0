/**
 * Preference datasets in JSON Lines, TRL's explicit-prompt preference format: one object per line,
 * `{"prompt": "...", "chosen": "...", "rejected": "..."}`, with an optional numeric `"margin"` (TRL's
 * reward-trainer column).
 */
import { readFile } from 'node:fs/promises';
import type { PreferencePair } from './label-pairs.js';

/** One parsed example. */
export interface PreferenceExample extends PreferencePair<string> {
  /** Optional per-pair margin of the loss `−log σ(r_c − r_r − margin)`. */
  margin?: number;
}

/** Parse options. */
export interface ParsePreferenceOptions {
  /** What error messages call the data. Default `'<jsonl text>'`. */
  source?: string;
  /**
   * A pair whose `chosen` equals its `rejected` carries no preference: `'skip'` (default) leaves it out and
   * lists its line in `identicalLines`; `'error'` throws.
   */
  identical?: 'skip' | 'error';
}

/** A parsed dataset. */
export interface PreferenceDataset {
  pairs: PreferenceExample[];
  /** 1-based line numbers of pairs skipped because chosen = rejected. */
  identicalLines: number[];
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/**
 * Parses preference JSONL text.
 *
 * Rules: blank lines are skipped; every other line must be a JSON object with string fields `prompt`,
 * `chosen` and `rejected` (the prompt may be "" for prompt-free data); `margin`, when present, must be a
 * finite number; other fields are ignored. TRL's conversational form (lists of messages) is rejected:
 * apply a chat template and store text. A `\r\n` line end and a UTF-8 BOM are accepted.
 *
 * @throws Error `"<source> line <n>: field \"<name>\" ..."` naming the 1-based line, the field and the fix;
 *   `"<source> is empty ..."` when the text holds no pair at all (only blank lines).
 */
export function parsePreferenceJsonl(text: string, options: ParsePreferenceOptions = {}): PreferenceDataset {
  const { source = '<jsonl text>', identical = 'skip' } = options;
  if (typeof text !== 'string') {
    throw new TypeError(`parsePreferenceJsonl: text must be a string, got ${typeName(text)}.`);
  }
  if (identical !== 'skip' && identical !== 'error') {
    throw new Error(
      `parsePreferenceJsonl: identical must be 'skip' or 'error', got ${JSON.stringify(identical)}.`,
    );
  }
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const out: PreferenceDataset = { pairs: [], identicalLines: [] };
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
          '{"prompt": string, "chosen": string, "rejected": string}.',
      );
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(
        `${where}: expected a JSON object {"prompt": string, "chosen": string, "rejected": string}, got ${typeName(value)}.`,
      );
    }
    const obj = value as Record<string, unknown>;
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
          `${where}: field "${field}" must be a string, got ${typeName(v)}` +
            (Array.isArray(v)
              ? ' (the conversational format is not supported: apply a chat template and store the text).'
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
          `${where}: field "margin" must be a finite number when present, got ${typeName(obj.margin)}.`,
        );
      }
      example.margin = obj.margin;
    }
    if (example.chosen === example.rejected) {
      if (identical === 'error') {
        throw new Error(
          `${where}: fields "chosen" and "rejected" are identical, so the pair carries no preference; remove it ` +
            "or parse with { identical: 'skip' }.",
        );
      }
      out.identicalLines.push(i + 1);
      continue;
    }
    out.pairs.push(example);
  }
  if (out.pairs.length === 0 && out.identicalLines.length === 0) {
    // Said here, where the file is known: later stages would only see "no training pair fits maxLength".
    throw new Error(
      `${source} is empty: it holds no preference pair. Each line must be one JSON object ` +
        '{"prompt": string, "chosen": string, "rejected": string}.',
    );
  }
  return out;
}

/**
 * Reads a preference JSONL file, or parses in-memory text given as `{ text, source? }`.
 * See {@link parsePreferenceJsonl} for the format and errors.
 */
export async function readPreferenceJsonl(
  input: string | { text: string; source?: string },
  options: Omit<ParsePreferenceOptions, 'source'> = {},
): Promise<PreferenceDataset> {
  if (typeof input === 'object' && input !== null && typeof input.text === 'string') {
    return parsePreferenceJsonl(input.text, { ...options, source: input.source ?? '<jsonl text>' });
  }
  if (typeof input !== 'string' || input === '') {
    throw new TypeError('readPreferenceJsonl: pass a file path, or { text } for in-memory JSONL.');
  }
  let text: string;
  try {
    text = await readFile(input, 'utf8');
  } catch (err) {
    throw new Error(`readPreferenceJsonl: cannot read ${input} (${(err as Error).message}).`, { cause: err });
  }
  return parsePreferenceJsonl(text, { ...options, source: input });
}
