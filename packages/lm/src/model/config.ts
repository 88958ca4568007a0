/**
 * GPT-2 model configuration, in the Hugging Face `config.json` layout (`GPT2Config`), so that a real
 * GPT-2-family checkpoint directory loads as is and a saved model loads in `transformers`.
 *
 * Field names are kept in HF's snake_case on purpose: the object is what `config.json` holds.
 */

/** The resolved configuration of a GPT-2-architecture causal LM (every field present and validated). */
export interface GPT2Config {
  /** Vocabulary size V (rows of `wte`). */
  vocab_size: number;
  /** Maximum sequence length (rows of `wpe`); HF's `n_ctx` mirrors it. */
  n_positions: number;
  /** Hidden width D. */
  n_embd: number;
  /** Number of transformer blocks (0 is allowed: embeddings, final LayerNorm and tied head only). */
  n_layer: number;
  /** Attention heads H; `n_embd % n_head == 0`, head width Dh = D / H. */
  n_head: number;
  /** MLP width; `null` means 4 * n_embd (HF's default). */
  n_inner: number | null;
  /** LayerNorm epsilon (HF default 1e-5). */
  layer_norm_epsilon: number;
  /** Std of the normal initialisation (HF default 0.02). */
  initializer_range: number;
  /** Only the tanh-approximated GELU of GPT-2 is implemented (`gelu_new`, alias `gelu_pytorch_tanh`). */
  activation_function: 'gelu_new' | 'gelu_pytorch_tanh';
  /** Whether attention scores are divided by sqrt(Dh) (GPT-2: true). */
  scale_attn_weights: boolean;
  /** Beginning-of-sequence token id. */
  bos_token_id: number;
  /** End-of-sequence token id (GPT-2 uses the same token as BOS). */
  eos_token_id: number;
}

/** What {@link resolveConfig} accepts: the five shape fields are required, the rest default as in HF. */
export type GPT2ConfigInput = Pick<
  GPT2Config,
  'vocab_size' | 'n_positions' | 'n_embd' | 'n_layer' | 'n_head'
> &
  Partial<GPT2Config>;

/** The MLP width: `n_inner`, or 4 * n_embd when it is null. */
export function innerDim(config: GPT2Config): number {
  return config.n_inner ?? 4 * config.n_embd;
}

/** HF fields that are ignored because they do not change inference or training here. */
const IGNORED_FIELDS = new Set([
  'n_ctx',
  'model_type',
  'architectures',
  // Dropout is not implemented (RLHF fine-tuning runs with dropout off; see gpt2.ts).
  'attn_pdrop',
  'embd_pdrop',
  'resid_pdrop',
  'summary_type',
  'summary_use_proj',
  'summary_activation',
  'summary_proj_to_labels',
  'summary_first_dropout',
  'use_cache',
  'torch_dtype',
  'transformers_version',
  'task_specific_params',
  'pad_token_id',
]);

function fail(source: string, field: string, problem: string, fix: string): never {
  throw new Error(`${source}: ${field} ${problem}. ${fix}`);
}

function positiveInt(raw: Record<string, unknown>, field: string, source: string, allowZero = false): number {
  const v = raw[field];
  if (v === undefined || v === null) {
    fail(
      source,
      field,
      'is missing',
      `Set "${field}" to a ${allowZero ? 'non-negative' : 'positive'} integer.`,
    );
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (allowZero ? 0 : 1)) {
    fail(
      source,
      field,
      `must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`,
      `Set "${field}" to a ${allowZero ? 'non-negative' : 'positive'} integer.`,
    );
  }
  return v;
}

/**
 * Validates a configuration (an HF `config.json` object or a {@link GPT2ConfigInput}) and fills in HF's
 * defaults. Fields that select behaviour this implementation lacks are rejected rather than ignored, so a
 * checkpoint never loads into a silently different model.
 *
 * @param raw the parsed JSON / input object.
 * @param source what error messages call it (e.g. the config.json path).
 * @throws Error naming the field, the bad value and the fix.
 */
export function resolveConfig(
  raw: GPT2ConfigInput | Record<string, unknown>,
  source = 'GPT-2 config',
): GPT2Config {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${source}: expected a JSON object with GPT-2 config fields, got ${JSON.stringify(raw)}`);
  }
  const r = raw as Record<string, unknown>;

  if (r.model_type !== undefined && r.model_type !== 'gpt2') {
    fail(
      source,
      'model_type',
      `is ${JSON.stringify(r.model_type)}, not "gpt2"`,
      'resolveConfig reads GPT-2 configs only; resolveModelConfig and CausalLM.fromPretrained also read "llama", "qwen2" and "qwen3".',
    );
  }
  const vocab_size = positiveInt(r, 'vocab_size', source);
  const n_positions = positiveInt(r, 'n_positions', source);
  const n_embd = positiveInt(r, 'n_embd', source);
  const n_layer = positiveInt(r, 'n_layer', source, true);
  const n_head = positiveInt(r, 'n_head', source);
  if (n_embd % n_head !== 0) {
    fail(
      source,
      'n_head',
      `(${n_head}) does not divide n_embd (${n_embd})`,
      'Choose n_head so that n_embd % n_head == 0.',
    );
  }

  let n_inner: number | null = null;
  if (r.n_inner !== undefined && r.n_inner !== null) n_inner = positiveInt(r, 'n_inner', source);

  const layer_norm_epsilon = r.layer_norm_epsilon ?? 1e-5;
  if (
    typeof layer_norm_epsilon !== 'number' ||
    !(layer_norm_epsilon > 0) ||
    !Number.isFinite(layer_norm_epsilon)
  ) {
    fail(
      source,
      'layer_norm_epsilon',
      `must be a positive number, got ${JSON.stringify(layer_norm_epsilon)}`,
      'Use 1e-5 (GPT-2).',
    );
  }
  const initializer_range = r.initializer_range ?? 0.02;
  if (
    typeof initializer_range !== 'number' ||
    !(initializer_range >= 0) ||
    !Number.isFinite(initializer_range)
  ) {
    fail(
      source,
      'initializer_range',
      `must be a non-negative number, got ${JSON.stringify(initializer_range)}`,
      'Use 0.02 (GPT-2).',
    );
  }

  const activation_function = r.activation_function ?? 'gelu_new';
  if (activation_function !== 'gelu_new' && activation_function !== 'gelu_pytorch_tanh') {
    fail(
      source,
      'activation_function',
      `is ${JSON.stringify(activation_function)}, which is not implemented`,
      'Only the tanh-approximated GELU ("gelu_new" / "gelu_pytorch_tanh") of GPT-2 is supported.',
    );
  }
  const scale_attn_weights = r.scale_attn_weights ?? true;
  if (typeof scale_attn_weights !== 'boolean') {
    fail(
      source,
      'scale_attn_weights',
      `must be a boolean, got ${JSON.stringify(scale_attn_weights)}`,
      'Use true.',
    );
  }
  for (const field of ['scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn', 'add_cross_attention']) {
    if (r[field] !== undefined && r[field] !== false && r[field] !== null) {
      fail(
        source,
        field,
        `is ${JSON.stringify(r[field])}, which is not supported`,
        `Only standard GPT-2 attention is implemented; set "${field}" to false.`,
      );
    }
  }
  if (r.tie_word_embeddings !== undefined && r.tie_word_embeddings !== true) {
    fail(
      source,
      'tie_word_embeddings',
      `is ${JSON.stringify(r.tie_word_embeddings)}`,
      'The LM head is always tied to wte (GPT-2); untied heads are not supported.',
    );
  }

  const tokenId = (field: 'bos_token_id' | 'eos_token_id'): number => {
    const v = r[field];
    if (v === undefined || v === null) return vocab_size - 1; // GPT-2's <|endoftext|> is the last id
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= vocab_size) {
      fail(
        source,
        field,
        `must be an integer in [0, vocab_size=${vocab_size}), got ${JSON.stringify(v)}`,
        `Set "${field}" to a token id of the vocabulary.`,
      );
    }
    return v;
  };

  return {
    vocab_size,
    n_positions,
    n_embd,
    n_layer,
    n_head,
    n_inner,
    layer_norm_epsilon,
    initializer_range,
    activation_function,
    scale_attn_weights,
    bos_token_id: tokenId('bos_token_id'),
    eos_token_id: tokenId('eos_token_id'),
  };
}

/** The fields of a `config.json` not described by {@link GPT2Config} nor ignored (kept on save). */
export function extraConfigFields(raw: Record<string, unknown>): Record<string, unknown> {
  const known = new Set<string>([
    'vocab_size',
    'n_positions',
    'n_embd',
    'n_layer',
    'n_head',
    'n_inner',
    'layer_norm_epsilon',
    'initializer_range',
    'activation_function',
    'scale_attn_weights',
    'scale_attn_by_inverse_layer_idx',
    'reorder_and_upcast_attn',
    'add_cross_attention',
    'tie_word_embeddings',
    'bos_token_id',
    'eos_token_id',
  ]);
  return Object.fromEntries(Object.entries(raw).filter(([k]) => !known.has(k) && !IGNORED_FIELDS.has(k)));
}

/**
 * The `config.json` object HF's `GPT2LMHeadModel.from_pretrained` expects. Dropout fields are written as 0
 * because this implementation trains without dropout. `extras` (unknown fields of a loaded config) are kept.
 */
export function configToJSON(
  config: GPT2Config,
  extras: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...extras,
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: config.vocab_size,
    n_positions: config.n_positions,
    n_ctx: config.n_positions,
    n_embd: config.n_embd,
    n_layer: config.n_layer,
    n_head: config.n_head,
    n_inner: config.n_inner,
    activation_function: config.activation_function,
    layer_norm_epsilon: config.layer_norm_epsilon,
    initializer_range: config.initializer_range,
    scale_attn_weights: config.scale_attn_weights,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    attn_pdrop: 0,
    embd_pdrop: 0,
    resid_pdrop: 0,
    bos_token_id: config.bos_token_id,
    eos_token_id: config.eos_token_id,
    use_cache: true,
  };
}
