/**
 * Test-only fixtures (not exported): a synthetic preference task over token ids. Prompts are 1–3 ids in
 * [10, 32); a response is 2–5 ids then EOS (id 0). The chosen response draws its ids from [1, 6) ("good"
 * tokens), the rejected one from [6, 10) ("bad" tokens), so a policy can learn the preference from the ids.
 */
import type { TokenizedExample } from '@relign/lm';
import type { TokenizedPair } from '@relign/reward-model';
import { createRng } from '@relign/tensor';

export const EOS = 0;
export const TINY_MODEL = {
  vocab_size: 32,
  n_positions: 16,
  n_embd: 16,
  n_layer: 1,
  n_head: 2,
  initializer_range: 0.2,
};

export function example(prompt: readonly number[], response: readonly number[]): TokenizedExample {
  const ids = Int32Array.from([...prompt, ...response, EOS]);
  return { ids, promptLength: prompt.length, length: ids.length };
}

/** `n` synthetic pairs from `seed` (see the module comment). */
export function syntheticPairs(n: number, seed: number | string): TokenizedPair[] {
  const rng = createRng(seed);
  const draw = (lo: number, hi: number, k: number): number[] =>
    Array.from({ length: k }, () => lo + rng.int(hi - lo));
  return Array.from({ length: n }, () => {
    const prompt = draw(10, 32, 1 + rng.int(3));
    return {
      chosen: example(prompt, draw(1, 6, 2 + rng.int(4))),
      rejected: example(prompt, draw(6, 10, 2 + rng.int(4))),
    };
  });
}
