/** LoRA adapters for @relign/lm's CausalLM, in PEFT's file layout (see adapter.ts, attach.ts, peft.ts). */
export { LoraAdapter, loraVariableName, type LoraModuleSpec } from './adapter.js';
export {
  attachLora,
  detachLora,
  findLoraModules,
  loraAdapterOf,
  loraBaseModel,
  mergeAndUnload,
} from './attach.js';
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  DEFAULT_TARGETS,
  type LoraConfig,
  type LoraOptions,
} from './config.js';
export { loadLoraAdapter, loadLoraWeights, peftKey, readAdapterConfig, saveLoraAdapter } from './peft.js';
