/** The causal LM of @relign/lm (GPT-2, Llama, Qwen2, Qwen3): model, KV cache, scalar heads, configs. */
export {
  CausalLM,
  architectureOf,
  modelParameterSpecs,
  CONFIG_FILE,
  WEIGHTS_FILE,
  type Batch2D,
  type CreateOptions,
  type ForwardOptions,
  type ForwardResult,
  type LoadOptions,
  type WeightsLayout,
} from './causal-lm.js';
export { KVCache } from './kv-cache.js';
export { ScalarHead, type ScalarHeadCreateOptions, type ScalarHeadOptions } from './heads.js';
export { resolveConfig, configToJSON, innerDim, type GPT2Config, type GPT2ConfigInput } from './config.js';
export { parameterSpecs, type ParamSpec } from './params.js';
export { checkModelSize, parameterCount } from './size.js';
export type { CheckpointTensor } from './checkpoint.js';
export type { ProjectionHook, ProjectionContext } from './projection-hook.js';
export {
  resolveModelConfig,
  modelConfigToJSON,
  modelDims,
  modelTypeOf,
  isGPT2Config,
  MODEL_TYPES,
  type ModelConfig,
  type ModelConfigInput,
  type ModelDims,
  type ModelType,
} from './model-config.js';
export {
  resolveLlamaConfig,
  llamaConfigToJSON,
  type LlamaConfig,
  type LlamaConfigInput,
  type LlamaFamily,
  type Llama3RopeScaling,
} from './llama-config.js';
export { llamaParameterSpecs } from './llama.js';
