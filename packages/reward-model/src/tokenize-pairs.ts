/**
 * Preference pairs -> token ids: each side is `prompt ++ response ++ [eos]`, the sequence whose last token
 * (the EOS) the reward model scores (docs/algorithms.md §1.7 step 2, §2.2).
 */
import {
  tokenizePromptCompletion,
  type TextTokenizer,
  type TokenizedExample,
  type TokenizeOptions,
} from '@relign/lm';
import type { PreferenceExample } from './dataset.js';

/** One tokenized pair. Each side's `promptLength` marks where its response starts (for the LM term). */
export interface TokenizedPair {
  chosen: TokenizedExample;
  rejected: TokenizedExample;
  /** Per-pair loss margin (from the dataset's `margin`), if any. */
  margin?: number;
}

/** What {@link tokenizePreferencePairs} returns. */
export interface TokenizePairsResult {
  pairs: TokenizedPair[];
  /** Pairs left out because a side's `response + EOS` does not fit `maxLength`. */
  dropped: number;
  /** Pairs whose prompt lost tokens from its start (on either side) to fit. */
  promptTruncated: number;
  /** Indices (into the input) of the pairs kept. */
  kept: number[];
}

/**
 * Tokenizes preference pairs with the SFT rules of `@relign/lm` (`tokenizePromptCompletion`): prompts cut
 * from the left to fit `maxLength`, a pair dropped (and counted) when a response + EOS alone is too long.
 * Both sides are cut independently, so each keeps as much prompt as fits next to its own response.
 */
export function tokenizePreferencePairs(
  pairs: readonly PreferenceExample[],
  tokenizer: TextTokenizer,
  options: Pick<TokenizeOptions, 'maxLength' | 'addBos'>,
): TokenizePairsResult {
  pairs.forEach((p, i) => {
    if (
      p === null ||
      typeof p !== 'object' ||
      typeof p.prompt !== 'string' ||
      typeof p.chosen !== 'string' ||
      typeof p.rejected !== 'string'
    ) {
      throw new TypeError(`tokenizePreferencePairs: pairs[${i}] must be {prompt, chosen, rejected} strings.`);
    }
  });
  const opts: TokenizeOptions = { ...options, overflow: 'drop' };
  const c = tokenizePromptCompletion(
    pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen })),
    tokenizer,
    opts,
  );
  const r = tokenizePromptCompletion(
    pairs.map((p) => ({ prompt: p.prompt, completion: p.rejected })),
    tokenizer,
    opts,
  );
  const chosenAt = new Map(c.kept.map((src, k) => [src, c.examples[k]!]));
  const rejectedAt = new Map(r.kept.map((src, k) => [src, r.examples[k]!]));
  const result: TokenizePairsResult = { pairs: [], dropped: 0, promptTruncated: 0, kept: [] };
  const fullPrompt = pairs.map((p) => tokenizer.encode(p.prompt).length + (options.addBos ? 1 : 0));
  pairs.forEach((p, i) => {
    const chosen = chosenAt.get(i);
    const rejected = rejectedAt.get(i);
    if (chosen === undefined || rejected === undefined) {
      result.dropped++;
      return;
    }
    if (chosen.promptLength < fullPrompt[i]! || rejected.promptLength < fullPrompt[i]!)
      result.promptTruncated++;
    const pair: TokenizedPair = { chosen, rejected };
    if (p.margin !== undefined) pair.margin = p.margin;
    result.pairs.push(pair);
    result.kept.push(i);
  });
  return result;
}
