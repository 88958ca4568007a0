/**
 * @relign/lm — language models for relign: GPT-2-compatible byte-level BPE tokenizers, a GPT-2-architecture
 * causal LM with KV cache and scalar heads, SFT, and the recipe for the small default base model.
 */
export * from './tokenizer/index.js';
export * from './model/index.js';
