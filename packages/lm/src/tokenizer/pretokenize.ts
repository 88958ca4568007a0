/**
 * GPT-2's pre-tokenization regex (openai/gpt-2 `encoder.py`), in JavaScript syntax.
 *
 * Text is first split into pieces (a contraction suffix; an optional space plus a run of letters, of digits,
 * or of other non-space symbols; whitespace runs) and BPE merges never cross piece boundaries. The
 * `\s+(?!\S)` alternative leaves the last space of a whitespace run to start the following word, which is why
 * `"a  b"` becomes `["a", " ", " b"]`.
 *
 * Flags `gu` (global, Unicode property escapes). A global regex carries `lastIndex` state: callers that
 * `exec` it in a loop should use their own copy (`new RegExp(p.source, p.flags)`), as this module does.
 */
export const GPT2_PRETOKENIZE_PATTERN: RegExp =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Splits `text` into GPT-2 pre-token pieces (their concatenation is `text`). */
export function pretokenize(text: string): string[] {
  const re = new RegExp(GPT2_PRETOKENIZE_PATTERN.source, GPT2_PRETOKENIZE_PATTERN.flags);
  const out: string[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push(m[0]);
  return out;
}
