/**
 * What fits where: the memory a training step needs for a model, full-weight vs LoRA, against the wasm
 * backend's ceiling (wasm32 addresses 4 GiB; the tfjs heap, every tensor included, lives inside it). Counts
 * come from the models' config.json shapes through @relign/lm's closed-form parameter count, so the README
 * table (`relign doctor --fit`, checked by fit.test.ts) cannot drift from the architectures relign builds.
 */
import { modelTypeOf, parameterCount, resolveModelConfig, type ModelConfig } from '@relign/lm';

/** The config.json shape fields of models people align with TRL today (Hugging Face Hub, as published). */
export const KNOWN_MODELS: Record<string, Record<string, unknown>> = {
  'HuggingFaceTB/SmolLM2-135M-Instruct': {
    model_type: 'llama',
    vocab_size: 49152,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    max_position_embeddings: 8192,
    tie_word_embeddings: true,
  },
  'Qwen/Qwen2.5-0.5B-Instruct': {
    model_type: 'qwen2',
    vocab_size: 151936,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    max_position_embeddings: 32768,
    tie_word_embeddings: true,
  },
  'meta-llama/Llama-3.2-1B-Instruct': {
    model_type: 'llama',
    vocab_size: 128256,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 64,
    max_position_embeddings: 131072,
    tie_word_embeddings: true,
  },
  'Qwen/Qwen3-1.7B': {
    model_type: 'qwen3',
    vocab_size: 151936,
    hidden_size: 2048,
    intermediate_size: 6144,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    max_position_embeddings: 40960,
    tie_word_embeddings: true,
  },
  'Qwen/Qwen2.5-7B-Instruct': {
    model_type: 'qwen2',
    vocab_size: 152064,
    hidden_size: 3584,
    intermediate_size: 18944,
    num_hidden_layers: 28,
    num_attention_heads: 28,
    num_key_value_heads: 4,
    max_position_embeddings: 32768,
    tie_word_embeddings: false,
  },
};

/** wasm32's address space; the estimate must stay below it with room for the runtime (see WASM_BUDGET). */
export const WASM32_BYTES = 4 * 2 ** 30;
/** What a step may use of the wasm heap: 3.5 GiB, leaving room for fragmentation and the JS side's copies. */
export const WASM_BUDGET = 3.5 * 2 ** 30;

export interface FitOptions {
  /** LoRA rank (adapters on q/k/v/o and gate/up/down, relign's default targets). Default 16. */
  r?: number;
  /** Tokens of one step's batch (batch × sequence length) for the activation term. Default 256. */
  tokens?: number;
}

export interface FitRow {
  name: string;
  params: number;
  loraParams: number;
  /** fp32 weights (relign holds every weight as float32, whatever the file's dtype). */
  weightBytes: number;
  /** Full training: weights + gradients + AdamW's two moments (16 bytes a parameter) + activations. */
  fullBytes: number;
  /** LoRA: frozen fp32 weights + the adapters' weights, gradients and moments + activations. */
  loraBytes: number;
  activationBytes: number;
  /** Where it trains: wasm fully, wasm with LoRA, or WebGPU (an adapter with at least the LoRA bytes). */
  verdict: 'wasm: full' | 'wasm: LoRA only' | 'WebGPU';
}

/**
 * A rough activation term: per layer and token, the tensors a backward pass keeps (norm outputs, q/k/v/o,
 * the three MLP projections and the SwiGLU product, ~8·hidden + 4·intermediate floats), the attention
 * probabilities (heads × tokens per token), and the logits with their softmax and gradient (3 × vocab).
 */
function activationBytes(c: ModelConfig, tokens: number): number {
  const [D, F, L, H, V] = dims(c);
  const perLayer = tokens * (8 * D + 4 * F) + H * tokens * tokens;
  return 4 * (L * perLayer + 3 * tokens * V);
}

/** hidden, intermediate, layers, heads, vocabulary of either config family. */
function dims(c: ModelConfig): [number, number, number, number, number] {
  if (modelTypeOf(c) === 'gpt2') {
    const g = c as unknown as { n_embd: number; n_inner: number | null; n_layer: number; n_head: number };
    return [g.n_embd, g.n_inner ?? 4 * g.n_embd, g.n_layer, g.n_head, c.vocab_size];
  }
  const l = c as unknown as { hidden_size: number; intermediate_size: number; num_hidden_layers: number };
  const h = (c as unknown as { num_attention_heads: number }).num_attention_heads;
  return [l.hidden_size, l.intermediate_size, l.num_hidden_layers, h, c.vocab_size];
}

/** Parameters of rank-r adapters on every attention and MLP projection: r·(in + out) each. */
export function loraParameterCount(c: ModelConfig, r: number): number {
  if (modelTypeOf(c) === 'gpt2') {
    const [D, F, L] = dims(c);
    // c_attn [D, 3D], attn c_proj [D, D], c_fc [D, F], mlp c_proj [F, D].
    return L * r * (D + 3 * D + 2 * D + 2 * (D + F));
  }
  const l = c as unknown as {
    hidden_size: number;
    intermediate_size: number;
    num_hidden_layers: number;
    num_attention_heads: number;
    num_key_value_heads: number;
    head_dim: number;
  };
  const D = l.hidden_size;
  const Q = l.num_attention_heads * l.head_dim;
  const KV = l.num_key_value_heads * l.head_dim;
  const F = l.intermediate_size;
  const perLayer = D + Q + 2 * (D + KV) + (Q + D) + 3 * (D + F);
  return l.num_hidden_layers * r * perLayer;
}

/** The memory estimate of training `config` (a config.json object) full-weight and with LoRA. */
export function fitRow(name: string, config: Record<string, unknown>, options: FitOptions = {}): FitRow {
  const c = resolveModelConfig(config, name);
  const params = parameterCount(c);
  const loraParams = loraParameterCount(c, options.r ?? 16);
  const act = activationBytes(c, options.tokens ?? 256);
  const weightBytes = 4 * params;
  const fullBytes = 16 * params + act;
  const loraBytes = weightBytes + 16 * loraParams + act;
  const verdict =
    fullBytes <= WASM_BUDGET ? 'wasm: full' : loraBytes <= WASM_BUDGET ? 'wasm: LoRA only' : 'WebGPU';
  return { name, params, loraParams, weightBytes, fullBytes, loraBytes, activationBytes: act, verdict };
}

const gb = (b: number) => (b / 2 ** 30).toFixed(2);
const millions = (n: number) => (n / 1e6 >= 1000 ? `${(n / 1e9).toFixed(2)}B` : `${(n / 1e6).toFixed(1)}M`);

/** The rows as a Markdown table (the README's "What fits where"). */
export function formatFitTable(rows: readonly FitRow[], options: FitOptions = {}): string {
  const r = options.r ?? 16;
  const lines = [
    `| model | parameters | fp32 weights GiB | activations GiB (${options.tokens ?? 256} tokens) | full training GiB | LoRA r ${r} (adapter params) GiB | trains on |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const x of rows) {
    const verdict =
      x.verdict === 'WebGPU' ? `WebGPU (adapter with ≥ ${gb(x.loraBytes)} GiB, LoRA)` : x.verdict;
    lines.push(
      `| ${x.name} | ${millions(x.params)} | ${gb(x.weightBytes)} | ${gb(x.activationBytes)} | ${gb(x.fullBytes)} | ` +
        `${gb(x.loraBytes)} (${millions(x.loraParams)}) | ${verdict} |`,
    );
  }
  return lines.join('\n');
}

/**
 * The rows for `relign doctor --fit <what>`: `all` (every known model), a known Hub id, a config.json or a
 * model folder. Hub ids outside {@link KNOWN_MODELS} are not downloaded: pass the model's config.json.
 * @throws Error naming what was given and what is accepted.
 */
export async function fitRowsFor(what: string, options: FitOptions = {}): Promise<FitRow[]> {
  if (what === 'all') return Object.entries(KNOWN_MODELS).map(([n, c]) => fitRow(n, c, options));
  const known = KNOWN_MODELS[what];
  if (known) return [fitRow(what, known, options)];
  const { readFile, stat } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const info = await stat(what).catch(() => undefined);
  if (info === undefined) {
    throw new Error(
      `--fit: ${what} is neither a file nor a folder nor a known Hub id (${Object.keys(KNOWN_MODELS).join(', ')}); ` +
        "pass 'all', one of those ids, or the model's config.json.",
    );
  }
  const file = info.isDirectory() ? join(what, 'config.json') : what;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`--fit: cannot read ${file} as JSON (${(err as Error).message}).`, { cause: err });
  }
  return [fitRow(file, raw as Record<string, unknown>, options)];
}
