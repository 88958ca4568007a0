/**
 * Hugging Face / GPT-2 tokenizer file formats: `vocab.json` (token string -> id), `merges.txt`
 * (`#version: 0.2` header, then one `left right` merge per line, best first) and `special_tokens_map.json`
 * (`{"eos_token": "...", "pad_token": ..., "bos_token": ..., "additional_special_tokens": [...]}`, where a
 * value may be a string or an object with a `content` string).
 */

/** Header line written at the top of merges.txt (as GPT-2's `vocab.bpe` and Hugging Face do). */
export const MERGES_HEADER = '#version: 0.2';

/**
 * Parses merges.txt text.
 * @param source names the file in error messages.
 * @returns the merges in rank order, and the 1-based line number of each.
 * @throws on a line that is not two tokens separated by one space, naming the line number.
 */
export function parseMergesWithLines(
  text: string,
  source = 'merges.txt',
): { merges: [string, string][]; lines: number[] } {
  const rows = text.split('\n');
  const merges: [string, string][] = [];
  const lines: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    let line = rows[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    // Hugging Face skips a "#version" header; blank lines (the file's trailing newline) carry nothing.
    if ((i === 0 && line.startsWith('#version')) || line === '') continue;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(
        `${source} line ${i + 1}: expected two tokens separated by one space ("left right"), got ${JSON.stringify(line)}`,
      );
    }
    merges.push([parts[0]!, parts[1]!]);
    lines.push(i + 1);
  }
  return { merges, lines };
}

/** {@link parseMergesWithLines} without the line numbers. */
export function parseMerges(text: string, source = 'merges.txt'): [string, string][] {
  return parseMergesWithLines(text, source).merges;
}

/** merges.txt text for merges in rank order, with the `#version: 0.2` header and a trailing newline. */
export function serializeMerges(merges: readonly (readonly [string, string])[]): string {
  const lines = [MERGES_HEADER];
  for (const [a, b] of merges) lines.push(`${a} ${b}`);
  return lines.join('\n') + '\n';
}

/**
 * vocab.json text with entries in id order. Written by hand rather than with `JSON.stringify(object)`:
 * an object would reorder integer-like keys ("0", "12") and would turn a `__proto__` token into a prototype.
 */
export function serializeVocab(tokensById: readonly (string | undefined)[]): string {
  const parts: string[] = [];
  tokensById.forEach((tok, id) => {
    if (tok !== undefined) parts.push(`${JSON.stringify(tok)}: ${id}`);
  });
  return `{\n  ${parts.join(',\n  ')}\n}\n`;
}

/**
 * Parses vocab.json text into a token -> id record (ids validated later by the tokenizer).
 * @throws when the text is not a JSON object, naming `source`.
 */
export function parseVocab(text: string, source = 'vocab.json'): Record<string, number> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${source}: expected a JSON object mapping token strings to integer ids`);
  }
  return value as Record<string, number>;
}

/** Token roles read from special_tokens_map.json. */
export interface SpecialTokensMap {
  eos?: string;
  pad?: string;
  bos?: string;
  additional: string[];
}

function tokenContent(value: unknown, field: string, source: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  throw new Error(`${source}: "${field}" must be a string or an object {"content": string}`);
}

/** Parses special_tokens_map.json text (other fields, such as `unk_token`, are ignored). */
export function parseSpecialTokensMap(text: string, source = 'special_tokens_map.json'): SpecialTokensMap {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${source}: expected a JSON object such as {"eos_token": "<|endoftext|>"}`);
  }
  const obj = value as Record<string, unknown>;
  const extra = obj['additional_special_tokens'];
  if (extra !== undefined && !Array.isArray(extra)) {
    throw new Error(`${source}: "additional_special_tokens" must be an array`);
  }
  const additional = (extra ?? []).map((v: unknown, i: number) => {
    const s = tokenContent(v, `additional_special_tokens[${i}]`, source);
    if (s === undefined) throw new Error(`${source}: "additional_special_tokens[${i}]" is null`);
    return s;
  });
  const out: SpecialTokensMap = { additional };
  const eos = tokenContent(obj['eos_token'], 'eos_token', source);
  const pad = tokenContent(obj['pad_token'], 'pad_token', source);
  const bos = tokenContent(obj['bos_token'], 'bos_token', source);
  if (eos !== undefined) out.eos = eos;
  if (pad !== undefined) out.pad = pad;
  if (bos !== undefined) out.bos = bos;
  return out;
}

/** special_tokens_map.json text (Hugging Face layout). */
export function serializeSpecialTokensMap(map: SpecialTokensMap): string {
  const obj: Record<string, unknown> = {};
  if (map.bos !== undefined) obj['bos_token'] = map.bos;
  if (map.eos !== undefined) obj['eos_token'] = map.eos;
  if (map.pad !== undefined) obj['pad_token'] = map.pad;
  if (map.additional.length > 0) obj['additional_special_tokens'] = map.additional;
  return JSON.stringify(obj, null, 2) + '\n';
}
