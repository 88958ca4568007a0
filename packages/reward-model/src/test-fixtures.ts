/**
 * Test-only fixtures (not exported from the package): a word-level tokenizer over a tiny review
 * vocabulary, a tiny backbone config, synthetic review-style responses, and the AFINN-165 labeler of the
 * `sentiment` package (a devDependency) wrapped as a reward function.
 */
import { createRequire } from 'node:module';
import { createRng } from '@relign/tensor';
import { rewardFunction, type RewardFunction } from './reward-function.js';

/** id 0 = EOS = PAD (as GPT-2's `<|endoftext|>`), id 1 = unknown word, then the vocabulary. */
export const WORDS = [
  '<eos>',
  '<unk>',
  // prompts and neutral filler
  'the',
  'food',
  'movie',
  'service',
  'was',
  'is',
  'and',
  'it',
  'a',
  'place',
  // AFINN-165 positive: good 3, great 3, love 3, nice 3, excellent 3, fun 4
  'good',
  'great',
  'love',
  'nice',
  'excellent',
  'fun',
  // AFINN-165 negative: bad -3, awful -3, hate -3, poor -2, boring -3, worst -3
  'bad',
  'awful',
  'hate',
  'poor',
  'boring',
  'worst',
] as const;

const ID = new Map<string, number>(WORDS.map((w, i) => [w, i]));

export const wordTokenizer = {
  encode: (text: string): number[] =>
    text
      .split(/\s+/)
      .filter((w) => w.length > 0)
      .map((w) => ID.get(w) ?? 1),
  decode: (ids: ArrayLike<number>): string =>
    Array.from(ids)
      .filter((i) => i !== 0)
      .map((i) => WORDS[i] ?? '<unk>')
      .join(' '),
  eosId: 0,
  padId: 0,
};

export const TINY_RM_CONFIG = {
  vocab_size: WORDS.length,
  n_positions: 16,
  n_embd: 32,
  n_layer: 2,
  n_head: 4,
};

const PROMPTS = ['the food was', 'the movie is', 'the service was', 'it is a place'];
const NEUTRAL = ['the', 'food', 'movie', 'service', 'was', 'is', 'and', 'it', 'a', 'place'];
const SENTIMENT = [
  'good',
  'great',
  'love',
  'nice',
  'excellent',
  'fun',
  'bad',
  'awful',
  'hate',
  'poor',
  'boring',
  'worst',
];

/** `n` (prompt, responseA, responseB) triples of random 3–6-word responses, seeded. */
export function syntheticTriples(
  n: number,
  seed: number | string,
): { prompts: string[]; a: string[]; b: string[] } {
  const rng = createRng(seed);
  const response = () => {
    const len = 3 + rng.int(4);
    return Array.from({ length: len }, () =>
      rng.uniform() < 0.4 ? SENTIMENT[rng.int(SENTIMENT.length)]! : NEUTRAL[rng.int(NEUTRAL.length)]!,
    ).join(' ');
  };
  const prompts: string[] = [];
  const a: string[] = [];
  const b: string[] = [];
  for (let i = 0; i < n; i++) {
    prompts.push(PROMPTS[rng.int(PROMPTS.length)]!);
    a.push(response());
    b.push(response());
  }
  return { prompts, a, b };
}

interface AfinnAnalyzer {
  analyze(text: string): { score: number };
}

/** The AFINN-165 labeler of `sentiment@5` as a text reward function on the response. */
export function afinnReward(): RewardFunction {
  const require = createRequire(import.meta.url);
  const Sentiment = require('sentiment') as new () => AfinnAnalyzer;
  const analyzer = new Sentiment();
  return rewardFunction((_prompt: string, response: string) => analyzer.analyze(response).score, {
    name: 'afinn',
    tokenizer: wordTokenizer,
  });
}
