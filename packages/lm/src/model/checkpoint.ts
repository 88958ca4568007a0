/**
 * Matching the tensors of a safetensors checkpoint to the model's parameters.
 *
 * GPT-2: the HF GPT2Model layout (`wte.weight`, `h.0.attn.c_attn.weight`, ...), optionally with the
 * `transformer.` prefix that GPT2LMHeadModel uses; the non-parameter buffers `h.{i}.attn.bias` /
 * `h.{i}.attn.masked_bias` (causal-mask constants in older checkpoints) are ignored.
 * Llama/Qwen: the HF names as they are (`model.embed_tokens.weight`, ..., `lm_head.weight`); the buffer
 * `model.layers.{i}.self_attn.rotary_emb.inv_freq` of older checkpoints is ignored.
 * A tied head's `lm_head.weight` is ignored when it has the embedding's shape. Anything else is reported,
 * unless `strict` is false (e.g. a reward-model file that also holds `score.weight`).
 */
import { isGPT2Config, modelDims, modelTypeOf, type ModelConfig } from './model-config.js';
import type { ParamSpec } from './params.js';

/** One tensor as read from a safetensors file (the shape `readSafetensors` of @relign/tensor returns). */
export interface CheckpointTensor {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface MatchOptions {
  /** Reject tensors that are neither parameters nor known buffers. Default true. */
  strict?: boolean;
  /** What error messages call the file. */
  source?: string;
}

/** Per-architecture naming rules. */
function rulesOf(config: ModelConfig): { prefix: string | undefined; buffer: RegExp; tied: boolean } {
  return isGPT2Config(config)
    ? { prefix: 'transformer.', buffer: /^h\.\d+\.attn\.(bias|masked_bias)$/, tied: true }
    : {
        prefix: undefined,
        buffer: /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/,
        tied: config.tie_word_embeddings,
      };
}

/** The shape fields error messages show. */
function describe(config: ModelConfig): string {
  if (isGPT2Config(config)) {
    return (
      `the GPT-2 config (n_layer=${config.n_layer}, n_embd=${config.n_embd}, ` +
      `vocab_size=${config.vocab_size}, n_positions=${config.n_positions})`
    );
  }
  return (
    `the ${modelTypeOf(config)} config (num_hidden_layers=${config.num_hidden_layers}, ` +
    `hidden_size=${config.hidden_size}, vocab_size=${config.vocab_size}, ` +
    `num_key_value_heads=${config.num_key_value_heads}, head_dim=${config.head_dim}, ` +
    `tie_word_embeddings=${config.tie_word_embeddings})`
  );
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Picks each parameter's data out of a checkpoint's tensors.
 *
 * @returns parameter name (no prefix) -> float32 data, for every spec.
 * @throws Error listing every missing tensor, every tensor with a wrong shape or dtype (with expected and
 *   found values), and, when strict, every unexpected tensor.
 */
export function matchCheckpoint(
  tensors: ReadonlyMap<string, CheckpointTensor>,
  specs: readonly ParamSpec[],
  config: ModelConfig,
  { strict = true, source = 'checkpoint' }: MatchOptions = {},
): Map<string, Float32Array> {
  const { prefix, buffer, tied } = rulesOf(config);
  const { vocabSize, hiddenSize } = modelDims(config);
  const wanted = new Map(specs.map((s) => [s.name, s]));
  const found = new Map<string, Float32Array>();
  const problems: string[] = [];
  const unexpected: string[] = [];
  const seenFrom = new Map<string, string>();

  for (const [fileName, t] of tensors) {
    const name =
      prefix !== undefined && fileName.startsWith(prefix) ? fileName.slice(prefix.length) : fileName;
    if (buffer.test(name)) continue;
    if (name === 'lm_head.weight' && tied) {
      // Tied to the embedding: HF drops it on save, some files keep a copy. Only a wrong shape is an error.
      if (!sameShape(t.shape, [vocabSize, hiddenSize])) {
        const emb = isGPT2Config(config) ? 'wte' : 'embed_tokens';
        problems.push(
          `lm_head.weight has shape [${t.shape}] but the tied head must match ${emb} [${vocabSize}, ${hiddenSize}]`,
        );
      }
      continue;
    }
    const spec = wanted.get(name);
    if (spec === undefined) {
      unexpected.push(fileName);
      continue;
    }
    const previous = seenFrom.get(name);
    if (previous !== undefined) {
      problems.push(`${name} is present twice (as ${previous} and ${fileName})`);
      continue;
    }
    seenFrom.set(name, fileName);
    if (t.dtype !== 'float32') {
      problems.push(`${fileName} has dtype ${t.dtype}, expected a floating-point tensor`);
      continue;
    }
    if (!sameShape(t.shape, spec.shape)) {
      problems.push(`${fileName} has shape [${t.shape}], expected [${spec.shape}]`);
      continue;
    }
    found.set(name, t.data as Float32Array);
  }

  const missing = specs.filter((s) => !seenFrom.has(s.name)).map((s) => s.name);
  if (missing.length > 0) {
    const shown = missing.length > 12 ? [...missing.slice(0, 12), `... (${missing.length} in all)`] : missing;
    problems.push(`missing tensors: ${shown.join(', ')}`);
  }
  if (strict && unexpected.length > 0) {
    problems.push(
      `unexpected tensors: ${unexpected.join(', ')} (pass { strict: false } to ignore tensors that are not ` +
        `${isGPT2Config(config) ? 'GPT-2' : modelTypeOf(config)} parameters, e.g. a value or reward head)`,
    );
  }
  if (problems.length > 0) {
    throw new Error(`${source} does not match ${describe(config)}:\n  - ${problems.join('\n  - ')}`);
  }
  return found;
}
