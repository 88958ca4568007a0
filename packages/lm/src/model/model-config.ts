/**
 * The configuration of any supported architecture, chosen by config.json's `model_type`: "gpt2" (config.ts)
 * or "llama" / "qwen2" / "qwen3" (llama-config.ts), and the few dimensions every caller needs regardless of
 * architecture (HF names them differently: `n_embd` vs `hidden_size`, `n_positions` vs
 * `max_position_embeddings`).
 */
import {
  configToJSON,
  extraConfigFields,
  resolveConfig,
  type GPT2Config,
  type GPT2ConfigInput,
} from './config.js';
import {
  llamaConfigToJSON,
  llamaExtraFields,
  resolveLlamaConfig,
  type LlamaConfig,
  type LlamaConfigInput,
} from './llama-config.js';

export type ModelConfig = GPT2Config | LlamaConfig;
/** GPT-2 inputs need no `model_type`; Llama-family inputs name theirs. */
export type ModelConfigInput = GPT2ConfigInput | LlamaConfigInput;
export type ModelType = 'gpt2' | LlamaConfig['model_type'];

export const MODEL_TYPES: readonly ModelType[] = ['gpt2', 'llama', 'qwen2', 'qwen3'];

/** The architecture of a resolved config (GPT-2 configs carry no `model_type` field). */
export function modelTypeOf(config: ModelConfig): ModelType {
  return 'model_type' in config ? config.model_type : 'gpt2';
}

export function isGPT2Config(config: ModelConfig): config is GPT2Config {
  return !('model_type' in config);
}

/**
 * Validates any supported config (errors name `source` and the field). A missing `model_type` means GPT-2
 * (relign's own configs before Llama support).
 */
export function resolveModelConfig(
  raw: ModelConfigInput | Record<string, unknown>,
  source = 'model config',
): ModelConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${source}: expected a JSON object with model config fields, got ${JSON.stringify(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  const type = r.model_type;
  if (type === undefined || type === 'gpt2') return resolveConfig(r, source);
  if (type === 'llama' || type === 'qwen2' || type === 'qwen3') return resolveLlamaConfig(r, source);
  throw new Error(
    `${source}: model_type is ${JSON.stringify(type)}, which is not supported. ` +
      `Supported architectures: ${MODEL_TYPES.map((t) => `"${t}"`).join(', ')} ` +
      '(Llama 2/3.x, SmolLM2 and TinyLlama are "llama"; Qwen2.5 is "qwen2").',
  );
}

/** Fields of a config.json not described by the resolved config nor ignored (kept on save). */
export function modelExtraFields(config: ModelConfig, raw: Record<string, unknown>): Record<string, unknown> {
  return isGPT2Config(config) ? extraConfigFields(raw) : llamaExtraFields(raw);
}

/** The config.json object `transformers` loads for this config. */
export function modelConfigToJSON(
  config: ModelConfig,
  extras: Record<string, unknown> = {},
): Record<string, unknown> {
  return isGPT2Config(config) ? configToJSON(config, extras) : llamaConfigToJSON(config, extras);
}

/** Architecture-independent dimensions. */
export interface ModelDims {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads per layer (= numHeads without grouped-query attention). */
  numKvHeads: number;
  headDim: number;
  /** The longest sequence: a hard limit for GPT-2's learned positions, the trained context for RoPE models. */
  maxPositions: number;
}

export function modelDims(config: ModelConfig): ModelDims {
  if (isGPT2Config(config)) {
    return {
      vocabSize: config.vocab_size,
      hiddenSize: config.n_embd,
      numLayers: config.n_layer,
      numHeads: config.n_head,
      numKvHeads: config.n_head,
      headDim: config.n_embd / config.n_head,
      maxPositions: config.n_positions,
    };
  }
  return {
    vocabSize: config.vocab_size,
    hiddenSize: config.hidden_size,
    numLayers: config.num_hidden_layers,
    numHeads: config.num_attention_heads,
    numKvHeads: config.num_key_value_heads,
    headDim: config.head_dim,
    maxPositions: config.max_position_embeddings,
  };
}
