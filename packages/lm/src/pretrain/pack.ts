/**
 * Packing documents into fixed-length blocks for language-model pretraining.
 */
import type { TokenizedExample } from '../data/tokenize.js';

export interface PackOptions {
  /** Tokens per block (the model's `n_positions`). */
  blockSize: number;
  /** Separator appended after every document (`<|endoftext|>`), so the model learns where texts end. */
  eosId: number;
}

/**
 * Concatenates `doc0 EOS doc1 EOS ...` into one stream and cuts it into blocks of `blockSize` tokens with
 * stride `blockSize − 1`: consecutive blocks share one token, so every token of the stream except the first
 * is a prediction target exactly once (a block's first token only conditions; the loss covers the rest).
 * The incomplete tail is dropped. Each block is an example with `promptLength = 0` (all targets), so the SFT
 * training loop and `evaluateLoss` train and score it unchanged.
 *
 * @param docs token ids of each document (without EOS).
 * @returns the blocks and the stream length.
 */
export function packDocuments(
  docs: Iterable<ArrayLike<number>>,
  options: PackOptions,
): { blocks: TokenizedExample[]; streamTokens: number } {
  const { blockSize, eosId } = options;
  if (!Number.isInteger(blockSize) || blockSize < 2) {
    throw new Error(`packDocuments: blockSize must be an integer >= 2 (got ${blockSize}).`);
  }
  if (!Number.isInteger(eosId) || eosId < 0)
    throw new Error(`packDocuments: eosId must be a token id (got ${eosId}).`);
  let total = 0;
  const parts: ArrayLike<number>[] = [];
  for (const d of docs) {
    parts.push(d);
    total += d.length + 1;
  }
  const stream = new Int32Array(total);
  let at = 0;
  for (const d of parts) {
    stream.set(d, at);
    at += d.length;
    stream[at++] = eosId;
  }
  const blocks: TokenizedExample[] = [];
  const stride = blockSize - 1;
  for (let start = 0; start + blockSize <= total; start += stride) {
    blocks.push({ ids: stream.slice(start, start + blockSize), promptLength: 0, length: blockSize });
  }
  return { blocks, streamTokens: total };
}
