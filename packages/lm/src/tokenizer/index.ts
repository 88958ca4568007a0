// Byte-level BPE tokenizers (GPT-2 compatible) for @relign/lm.
export { BpeTokenizer, GPT2_EOS } from './bpe-tokenizer.js';
export type { BpeTokenizerOptions, SpecialTokens } from './bpe-tokenizer.js';
export { bytesToUnicode } from './byte-unicode.js';
export { GPT2_PRETOKENIZE_PATTERN, pretokenize } from './pretokenize.js';
export { trainBpe } from './train.js';
export type { TrainBpeOptions } from './train.js';
