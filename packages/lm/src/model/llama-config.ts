/**
 * Configuration of the Llama family of decoders (`model_type` "llama", "qwen2", "qwen3"), in the Hugging Face
 * `config.json` layout (`LlamaConfig`, `Qwen2Config`, `Qwen3Config`), with HF's defaults. The three share one
 * implementation (llama.ts); they differ in
 * - qwen2: q/k/v projections always have biases (o_proj none);
 * - qwen3: per-head RMSNorm of q and k before the rotation, and an explicit `head_dim` (HF default 128);
 * - llama: optional `attention_bias` (q/k/v/o) and `mlp_bias`, and `rope_scaling` of type "llama3".
 */

export type LlamaFamily = 'llama' | 'qwen2' | 'qwen3';

/** Llama 3's frequency-dependent RoPE scaling (`rope_scaling` with `rope_type: "llama3"`). */
export interface Llama3RopeScaling {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/** The resolved configuration (every field present and validated). */
export interface LlamaConfig {
  model_type: LlamaFamily;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Key/value heads (grouped-query attention); divides num_attention_heads. */
  num_key_value_heads: number;
  /** Width of one head; hidden_size / num_attention_heads unless given (qwen3: 128 unless given). */
  head_dim: number;
  /** Longest sequence the model was trained for (RoPE itself has no hard limit). */
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: Llama3RopeScaling | null;
  /** llama/qwen3: biases on q, k, v and o; qwen2: always true (q, k, v only). */
  attention_bias: boolean;
  /** llama only: biases on gate/up/down. */
  mlp_bias: boolean;
  /** The LM head is the token embedding (no `lm_head.weight`). */
  tie_word_embeddings: boolean;
  hidden_act: 'silu';
  initializer_range: number;
  bos_token_id: number | null;
  /** One id or several (Llama 3 Instruct lists its end-of-turn tokens). */
  eos_token_id: number | number[] | null;
}

/** What {@link resolveLlamaConfig} accepts: `model_type` and the shape fields, the rest defaulting as in HF. */
export type LlamaConfigInput = Pick<
  LlamaConfig,
  | 'model_type'
  | 'vocab_size'
  | 'hidden_size'
  | 'intermediate_size'
  | 'num_hidden_layers'
  | 'num_attention_heads'
> &
  Partial<LlamaConfig>;

/** Per-family facts the model code needs, derived from the config. */
export function llamaLayout(c: LlamaConfig): { qkvBias: boolean; oBias: boolean; qkNorm: boolean } {
  return {
    qkvBias: c.model_type === 'qwen2' || c.attention_bias,
    oBias: c.model_type !== 'qwen2' && c.attention_bias,
    qkNorm: c.model_type === 'qwen3',
  };
}

const HF_CLASS: Record<LlamaFamily, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

const MAX_POSITIONS_DEFAULT: Record<LlamaFamily, number> = { llama: 2048, qwen2: 32768, qwen3: 32768 };

/** Fields read into {@link LlamaConfig} (or checked): not kept as extras. */
const KNOWN = new Set<string>([
  'model_type',
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'max_position_embeddings',
  'rms_norm_eps',
  'rope_theta',
  'rope_scaling',
  'attention_bias',
  'mlp_bias',
  'tie_word_embeddings',
  'hidden_act',
  'initializer_range',
  'bos_token_id',
  'eos_token_id',
  'use_sliding_window',
  // Ignored: they do not change inference or training here (dropout is off, tp-splitting is the same math).
  'architectures',
  'torch_dtype',
  'dtype',
  'transformers_version',
  'use_cache',
  'attention_dropout',
  'pretraining_tp',
  'sliding_window',
  'max_window_layers',
  'layer_types',
]);

function fail(source: string, field: string, problem: string, fix: string): never {
  throw new Error(`${source}: ${field} ${problem}. ${fix}`);
}

function int(r: Record<string, unknown>, field: string, source: string, dflt?: number, min = 1): number {
  const v = r[field] ?? dflt;
  if (v === undefined) fail(source, field, 'is missing', `Set "${field}" to a positive integer.`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    fail(
      source,
      field,
      `must be an integer >= ${min}, got ${JSON.stringify(v)}`,
      `Set "${field}" to an integer >= ${min}.`,
    );
  }
  return v;
}

/** A finite number > 0 (>= 0 with `allowZero`), or `dflt` when absent. */
function positive(
  r: Record<string, unknown>,
  field: string,
  source: string,
  dflt: number,
  allowZero = false,
): number {
  const v = r[field] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || !(allowZero ? v >= 0 : v > 0)) {
    fail(
      source,
      field,
      `must be a finite number ${allowZero ? '>=' : '>'} 0, got ${JSON.stringify(v)}`,
      `Use ${dflt}.`,
    );
  }
  return v;
}

function bool(r: Record<string, unknown>, field: string, source: string, dflt: boolean): boolean {
  const v = r[field] ?? dflt;
  if (typeof v !== 'boolean') fail(source, field, `must be true or false, got ${JSON.stringify(v)}`, '');
  return v;
}

function tokenIds(
  r: Record<string, unknown>,
  field: string,
  source: string,
  vocab: number,
  dflt: number | null,
  list: boolean,
): number | number[] | null {
  const v = r[field] === undefined ? dflt : r[field];
  if (v === null) return null;
  const ok = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x < vocab;
  if (ok(v)) return v as number;
  if (list && Array.isArray(v) && v.length > 0 && v.every(ok)) return [...(v as number[])];
  fail(
    source,
    field,
    `must be ${list ? 'a token id or a list of token ids' : 'a token id'} in [0, vocab_size=${vocab}), got ${JSON.stringify(v)}`,
    `Set "${field}" to ids of the vocabulary (or null).`,
  );
}

function ropeScaling(raw: unknown, source: string): Llama3RopeScaling | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    fail(source, 'rope_scaling', `must be an object or null, got ${JSON.stringify(raw)}`, '');
  }
  const r = raw as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  if (type === 'default') return null;
  if (type !== 'llama3') {
    fail(
      source,
      'rope_scaling.rope_type',
      `is ${JSON.stringify(type)}, which is not implemented`,
      'Only "llama3" (and "default") RoPE scaling is supported.',
    );
  }
  const num = (f: string, integer = false): number => {
    const v = r[f];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v))) {
      fail(
        source,
        `rope_scaling.${f}`,
        `must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(v)}`,
        'Copy rope_scaling from the original Llama 3 config.json.',
      );
    }
    return v;
  };
  const s: Llama3RopeScaling = {
    rope_type: 'llama3',
    factor: num('factor'),
    low_freq_factor: num('low_freq_factor'),
    high_freq_factor: num('high_freq_factor'),
    original_max_position_embeddings: num('original_max_position_embeddings', true),
  };
  if (!(s.high_freq_factor > s.low_freq_factor)) {
    fail(
      source,
      'rope_scaling.high_freq_factor',
      `(${s.high_freq_factor}) must exceed low_freq_factor (${s.low_freq_factor})`,
      'Llama 3 uses 4 and 1.',
    );
  }
  return s;
}

/**
 * Validates a Llama/Qwen2/Qwen3 config (parsed config.json or a {@link LlamaConfigInput}) and fills in HF's
 * defaults. Settings this implementation lacks (other activations, RoPE scalings, sliding windows) are
 * refused rather than ignored.
 * @throws Error naming `source`, the field, the bad value and the fix.
 */
export function resolveLlamaConfig(r: Record<string, unknown>, source: string): LlamaConfig {
  const model_type = r.model_type as LlamaFamily;
  const vocab_size = int(r, 'vocab_size', source);
  const hidden_size = int(r, 'hidden_size', source);
  const intermediate_size = int(r, 'intermediate_size', source);
  const num_hidden_layers = int(r, 'num_hidden_layers', source, undefined, 0);
  const num_attention_heads = int(r, 'num_attention_heads', source);
  const num_key_value_heads = int(r, 'num_key_value_heads', source, num_attention_heads);
  if (num_attention_heads % num_key_value_heads !== 0) {
    fail(
      source,
      'num_key_value_heads',
      `(${num_key_value_heads}) does not divide num_attention_heads (${num_attention_heads})`,
      'Grouped-query attention needs num_attention_heads % num_key_value_heads == 0.',
    );
  }
  const explicitHeadDim = r.head_dim !== undefined && r.head_dim !== null;
  if (!explicitHeadDim && model_type !== 'qwen3' && hidden_size % num_attention_heads !== 0) {
    fail(
      source,
      'num_attention_heads',
      `(${num_attention_heads}) does not divide hidden_size (${hidden_size})`,
      'Set "head_dim" explicitly, or choose num_attention_heads dividing hidden_size.',
    );
  }
  const head_dim = explicitHeadDim
    ? int(r, 'head_dim', source)
    : model_type === 'qwen3'
      ? 128
      : hidden_size / num_attention_heads;
  if (head_dim % 2 !== 0) {
    fail(source, 'head_dim', `(${head_dim}) must be even`, 'Rotary embeddings rotate pairs of dimensions.');
  }
  const hidden_act = r.hidden_act ?? 'silu';
  if (hidden_act !== 'silu') {
    fail(
      source,
      'hidden_act',
      `is ${JSON.stringify(hidden_act)}, which is not implemented`,
      'Only "silu" (SwiGLU) is supported.',
    );
  }
  if (r.use_sliding_window === true) {
    fail(
      source,
      'use_sliding_window',
      'is true, which is not implemented',
      'Set it to false (full attention, as the released Qwen checkpoints use).',
    );
  }
  const attention_bias = model_type === 'qwen2' ? true : bool(r, 'attention_bias', source, false);
  const mlp_bias = model_type === 'llama' ? bool(r, 'mlp_bias', source, false) : false;
  const llama = model_type === 'llama';
  return {
    model_type,
    vocab_size,
    hidden_size,
    intermediate_size,
    num_hidden_layers,
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    max_position_embeddings: int(r, 'max_position_embeddings', source, MAX_POSITIONS_DEFAULT[model_type]),
    rms_norm_eps: positive(r, 'rms_norm_eps', source, 1e-6),
    rope_theta: positive(r, 'rope_theta', source, 10000),
    rope_scaling: ropeScaling(r.rope_scaling, source),
    attention_bias,
    mlp_bias,
    tie_word_embeddings: bool(r, 'tie_word_embeddings', source, false),
    hidden_act: 'silu',
    initializer_range: positive(r, 'initializer_range', source, 0.02, true),
    bos_token_id: tokenIds(
      r,
      'bos_token_id',
      source,
      vocab_size,
      llama ? Math.min(1, vocab_size - 1) : null,
      false,
    ) as number | null,
    eos_token_id: tokenIds(
      r,
      'eos_token_id',
      source,
      vocab_size,
      llama ? Math.min(2, vocab_size - 1) : null,
      true,
    ),
  };
}

/** The fields of a config.json that {@link LlamaConfig} does not describe nor ignores (kept on save). */
export function llamaExtraFields(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).filter(([k]) => !KNOWN.has(k)));
}

/** The config.json object `transformers` loads (`LlamaForCausalLM` / `Qwen2ForCausalLM` / `Qwen3ForCausalLM`). */
export function llamaConfigToJSON(
  c: LlamaConfig,
  extras: Record<string, unknown> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...extras,
    architectures: [HF_CLASS[c.model_type]],
    model_type: c.model_type,
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    head_dim: c.head_dim,
    max_position_embeddings: c.max_position_embeddings,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    rope_scaling: c.rope_scaling,
    hidden_act: c.hidden_act,
    tie_word_embeddings: c.tie_word_embeddings,
    initializer_range: c.initializer_range,
    attention_dropout: 0,
    bos_token_id: c.bos_token_id,
    eos_token_id: c.eos_token_id,
    torch_dtype: 'float32',
    use_cache: true,
  };
  if (c.model_type !== 'qwen2') out.attention_bias = c.attention_bias;
  if (c.model_type === 'llama') out.mlp_bias = c.mlp_bias;
  if (c.model_type !== 'llama') out.use_sliding_window = false;
  return out;
}
