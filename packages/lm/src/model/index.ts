/** The GPT-2-architecture causal LM of @relign/lm: model, KV cache, scalar heads, config. */
export {
  CausalLM,
  CONFIG_FILE,
  WEIGHTS_FILE,
  type Batch2D,
  type CreateOptions,
  type ForwardOptions,
  type ForwardResult,
  type LoadOptions,
} from './gpt2.js';
export { KVCache } from './kv-cache.js';
export { ScalarHead, type ScalarHeadCreateOptions, type ScalarHeadOptions } from './heads.js';
export { resolveConfig, configToJSON, innerDim, type GPT2Config, type GPT2ConfigInput } from './config.js';
export { parameterSpecs, type ParamSpec } from './params.js';
export { checkModelSize, parameterCount } from './size.js';
export type { CheckpointTensor } from './checkpoint.js';
