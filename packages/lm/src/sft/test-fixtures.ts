/**
 * Test-only fixtures for the SFT tests (not exported from the package): a one-id-per-character tokenizer
 * with pad == eos, and a tiny model.
 */
import type { TextTokenizer } from '../data/tokenize.js';
import { CausalLM } from '../model/causal-lm.js';

/** a..z -> 1..26, space -> 27, anything else -> 28; EOS = PAD = 0, as GPT-2's single `<|endoftext|>`. */
export const charTokenizer: TextTokenizer & { decode(ids: ArrayLike<number>): string } = {
  encode: (s) => [...s].map((c) => (c === ' ' ? 27 : c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : 28)),
  decode: (ids) =>
    Array.from(ids, (i) =>
      i === 0 ? '<eos>' : i === 27 ? ' ' : i === 28 ? '?' : String.fromCharCode(96 + i),
    ).join(''),
  eosId: 0,
  padId: 0,
};

export const TINY_CONFIG = { vocab_size: 29, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 } as const;

export function tinyModel(seed = 1): CausalLM {
  return CausalLM.create(TINY_CONFIG, seed);
}

export const TINY_DATA = [
  { prompt: 'cat', completion: ' sat' },
  { prompt: 'dog', completion: ' ran far' },
  { prompt: 'the sun', completion: ' is hot' },
  { prompt: 'a', completion: ' bee' },
  { prompt: 'we', completion: ' go' },
  { prompt: 'red', completion: ' fox' },
];

/** Host copies of every parameter. */
export function snapshot(model: CausalLM): Map<string, Float32Array> {
  return new Map([...model.variables()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
}
