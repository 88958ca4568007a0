/**
 * The browser entry of @relign/lm (package.json `exports["."].browser`): the same API as the Node entry. Its file
 * functions (`CausalLM.fromPretrained`, `BpeTokenizer.fromDirectory`, `loadTokenizer`, the corpus loaders, `save`)
 * reject with a clear error there, since @relign/tensor's platform module has no file system in a browser; load
 * models and tokenizers from URLs, bytes or Files instead (`loadCausalLM`, `causalLMFromBuffers`,
 * `loadBpeTokenizer`, `HfTokenizer.fromJSON`).
 */
export * from './index.js';
