// Byte-level BPE tokenizers (GPT-2 compatible) for @relign/lm.
export { BpeTokenizer, GPT2_EOS } from './bpe-tokenizer.js';
export type { BpeTokenizerOptions, SpecialTokens } from './bpe-tokenizer.js';
export { bytesToUnicode } from './byte-unicode.js';
export { GPT2_PRETOKENIZE_PATTERN, pretokenize } from './pretokenize.js';
export { trainBpe } from './train.js';
export type { TrainBpeOptions } from './train.js';
export { HfTokenizer } from './hf-tokenizer.js';
export type { HfTokenizerFiles, HfEncodeOptions, HfDecodeOptions } from './hf-tokenizer.js';
export { CHAT_ROLES, checkMessages, renderChatTemplate } from './chat-template.js';
export type { ChatMessage, ChatRole, ChatTemplateOptions } from './chat-template.js';
// Node only (reads files); browser code builds an HfTokenizer with HfTokenizer.fromJSON.
export { loadTokenizer, saveTokenizer, type LmTokenizer } from './load.js';
