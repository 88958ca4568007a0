/**
 * Preference data for offline DPO: TRL's JSONL `{prompt, chosen, rejected}`, as text or message lists (parsed
 * with line-numbered errors by `@relign/reward-model`, conversational rows rendered with the chat template), tokenized as `prompt ++ response ++ [eos]`, without the pairs whose two sides
 * are the same (they carry no preference; skipped and counted).
 */
import type { TextTokenizer } from '@relign/lm';
import { readPreferenceJsonl, tokenizePreferencePairs, type TokenizedPair } from '@relign/reward-model';

/** Whether a tokenized pair's two sides are the same token sequence with the same prompt split. */
export function isIdenticalPair(pair: TokenizedPair): boolean {
  const { chosen: a, rejected: b } = pair;
  if (a.length !== b.length || a.promptLength !== b.promptLength) return false;
  for (let i = 0; i < a.length; i++) if (a.ids[i] !== b.ids[i]) return false;
  return true;
}

/** The pairs without those whose chosen and rejected sides are identical, and the indices left out. */
export function dropIdenticalPairs(pairs: readonly TokenizedPair[]): {
  pairs: TokenizedPair[];
  identical: number[];
} {
  const out: TokenizedPair[] = [];
  const identical: number[] = [];
  pairs.forEach((p, i) => (isIdenticalPair(p) ? identical.push(i) : out.push(p)));
  return { pairs: out, identical };
}

export interface LoadPreferencePairsOptions {
  /** Longest sequence (the model's `n_positions`); prompts are cut from the left, too-long responses dropped. */
  maxLength: number;
  /** Prepend the tokenizer's BOS to every prompt. Default false. */
  addBos?: boolean;
}

/** What {@link loadPreferencePairs} returns. */
export interface PreferencePairs {
  pairs: TokenizedPair[];
  /** 1-based JSONL lines skipped because `chosen` equals `rejected` as text. */
  identicalLines: number[];
  /** Pairs skipped because both sides tokenize to the same sequence (after prompt truncation). */
  identicalTokenized: number;
  /** Pairs dropped because a side's response + EOS does not fit `maxLength`. */
  dropped: number;
  /** Pairs whose prompt lost tokens from its start to fit. */
  promptTruncated: number;
}

/**
 * Reads a preference JSONL file (or `{ text }`), tokenizes it and leaves out identical pairs.
 * @throws Error naming the line and field of a malformed record (see `readPreferenceJsonl`).
 */
export async function loadPreferencePairs(
  input: string | { text: string; source?: string },
  tokenizer: TextTokenizer,
  options: LoadPreferencePairsOptions,
): Promise<PreferencePairs> {
  // The tokenizer also renders conversational rows (message lists) with its chat template.
  const data = await readPreferenceJsonl(input, { identical: 'skip', tokenizer });
  const tokenized = tokenizePreferencePairs(data.pairs, tokenizer, {
    maxLength: options.maxLength,
    addBos: options.addBos ?? false,
  });
  const { pairs, identical } = dropIdenticalPairs(tokenized.pairs);
  return {
    pairs,
    identicalLines: data.identicalLines,
    identicalTokenized: identical.length,
    dropped: tokenized.dropped,
    promptTruncated: tokenized.promptTruncated,
  };
}
