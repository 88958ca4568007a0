/**
 * Model size, checked before anything is allocated. A config such as `n_layer: 1e9` is valid field by
 * field, but building it would spend minutes creating parameter specs and tensors and then die out of memory;
 * the closed-form count below rejects it at once, naming the file and the field that makes it too big.
 */
import { nodeOs } from '@relign/tensor';
import { innerDim, type GPT2Config } from './config.js';
import { llamaLayout, type LlamaConfig } from './llama-config.js';
import { isGPT2Config, type ModelConfig } from './model-config.js';

/** Parameters of a model with `config` (the closed form of its parameter specs). */
export function parameterCount(config: ModelConfig): number {
  return sizeTerms(config).reduce((a, t) => a + t.count, 0);
}

/** The parameter count split by the field that scales each part. */
function sizeTerms(config: ModelConfig): { field: string; count: number }[] {
  return isGPT2Config(config) ? gpt2Terms(config) : llamaTerms(config);
}

function llamaTerms(c: LlamaConfig): { field: string; count: number }[] {
  const { qkvBias, oBias, qkNorm } = llamaLayout(c);
  const D = c.hidden_size;
  const F = c.intermediate_size;
  const Q = c.num_attention_heads * c.head_dim;
  const KV = c.num_key_value_heads * c.head_dim;
  // Per layer: 2 norms, q/k/v/o (+ biases), q/k norms, gate/up/down (+ biases).
  const layer =
    2 * D +
    (D * Q + 2 * D * KV + Q * D) +
    (qkvBias ? Q + 2 * KV : 0) +
    (oBias ? D : 0) +
    (qkNorm ? 2 * c.head_dim : 0) +
    3 * D * F +
    (c.mlp_bias ? 2 * F + D : 0);
  return [
    { field: 'vocab_size', count: c.vocab_size * D * (c.tie_word_embeddings ? 1 : 2) },
    { field: 'num_hidden_layers', count: c.num_hidden_layers * layer },
    { field: 'hidden_size', count: D }, // final norm
  ];
}

function gpt2Terms(config: GPT2Config): { field: string; count: number }[] {
  const D = config.n_embd;
  const F = innerDim(config);
  // Per block: ln_1, ln_2 (2D each), c_attn (D·3D + 3D), attn c_proj (D·D + D), c_fc (D·F + F), mlp c_proj (F·D + D).
  const block = 4 * D + (3 * D * D + 3 * D) + (D * D + D) + (D * F + F) + (F * D + D);
  return [
    { field: 'vocab_size', count: config.vocab_size * D },
    { field: 'n_positions', count: config.n_positions * D },
    { field: 'n_layer', count: config.n_layer * block },
    { field: 'n_embd', count: 2 * D }, // ln_f
  ];
}

function gib(bytes: number): string {
  if (bytes < 2 ** 20) return `${bytes} bytes`;
  const g = bytes / 2 ** 30;
  return `${g >= 1000 ? Math.round(g) : +g.toPrecision(3)} GiB`;
}

/**
 * Throws when the float32 parameters of `config` need more than `maxBytes` (default: this machine's total
 * memory, `os.totalmem()`, which no model larger than it can fit in). Training needs several times the
 * weights (gradients, AdamW moments, activations), so a model that passes may still not train here.
 *
 * @param source what the message calls the config (e.g. the config.json path).
 * @throws Error naming `source`, the estimated size, the limit, and the field that contributes most.
 */
export function checkModelSize(config: ModelConfig, source: string, maxBytes?: number): void {
  const limit = maxBytes ?? nodeOs.totalmem();
  if (!(limit > 0)) throw new Error(`${source}: maxParameterBytes must be > 0 (got ${String(maxBytes)}).`);
  const terms = sizeTerms(config);
  const bytes = 4 * terms.reduce((a, t) => a + t.count, 0);
  if (bytes <= limit) return;
  const biggest = terms.reduce((a, t) => (t.count > a.count ? t : a));
  throw new Error(
    `${source}: the model would have ${parameterCount(config).toExponential(3)} parameters = ` +
      `${gib(bytes)} of float32 weights, more than ${maxBytes === undefined ? "this machine's memory" : 'maxParameterBytes'} ` +
      `(${gib(limit)}); most of it comes from "${biggest.field}": ${(config as unknown as Record<string, unknown>)[biggest.field]}. Fix that field ` +
      '(is the config.json damaged?), or pass maxParameterBytes to raise the limit.',
  );
}
