/**
 * Browser-safe loading: models and tokenizers from a URL, an `ArrayBuffer`/`Uint8Array` or a `File`/`Blob`
 * (no file system). Exported by both entries of @relign/lm; in Node.js a URL needs `fetch` (Node 20 has it).
 */
import { nodeFs, parseSafetensors } from '@relign/tensor';
import { CausalLM, type LoadOptions } from '../model/causal-lm.js';
import { BpeTokenizer } from '../tokenizer/bpe-tokenizer.js';

/** Where bytes come from: a URL (fetched), bytes, or a `Blob` (a `File` from an `<input type="file">`). */
export type ByteSource = string | URL | ArrayBuffer | ArrayBufferView | Blob;

function describe(source: ByteSource): string {
  if (typeof source === 'string' || source instanceof URL) return String(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return (source as File).name ?? 'a Blob';
  return 'the given bytes';
}

/** The bytes of `source`; a URL is fetched (its HTTP status is named when it fails). */
export async function readBytes(source: ByteSource): Promise<Uint8Array> {
  if (typeof source === 'string' || source instanceof URL) {
    // Node's fetch does not read file: URLs (what a package's `new URL(..., import.meta.url)` is in Node).
    if (String(source).startsWith('file:')) {
      return new Uint8Array(
        await nodeFs.readFile(new URL(source)).catch((err: unknown) => {
          throw new Error(`readBytes: cannot read ${String(source)} (${(err as Error).message}).`, {
            cause: err,
          });
        }),
      );
    }
    const response = await fetch(source).catch((err: unknown) => {
      throw new Error(`readBytes: cannot fetch ${String(source)} (${(err as Error).message}).`, {
        cause: err,
      });
    });
    if (!response.ok) {
      throw new Error(
        `readBytes: fetching ${String(source)} answered HTTP ${response.status} ${response.statusText}.`,
      );
    }
    return new Uint8Array(await response.arrayBuffer());
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob)
    return new Uint8Array(await source.arrayBuffer());
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  throw new TypeError(
    `readBytes: expected a URL, an ArrayBuffer, a typed array or a File/Blob, got ${Object.prototype.toString.call(source)}.`,
  );
}

/** The UTF-8 text of `source` (see {@link readBytes}). */
export async function readText(source: ByteSource): Promise<string> {
  return new TextDecoder().decode(await readBytes(source));
}

/** The files of a byte-level BPE tokenizer (Hugging Face GPT-2 layout), each from any {@link ByteSource}. */
export interface BpeTokenizerSources {
  vocab: ByteSource;
  merges: ByteSource;
  specialTokensMap?: ByteSource;
}

/**
 * A {@link BpeTokenizer} from `vocab.json`, `merges.txt` and optionally `special_tokens_map.json` given as URLs,
 * bytes or Files: the browser-safe counterpart of `BpeTokenizer.fromDirectory`.
 */
export async function loadBpeTokenizer(sources: BpeTokenizerSources): Promise<BpeTokenizer> {
  const [vocab, merges, specialTokensMap] = await Promise.all([
    readText(sources.vocab),
    readText(sources.merges),
    sources.specialTokensMap === undefined ? undefined : readText(sources.specialTokensMap),
  ]);
  return BpeTokenizer.fromTexts(
    { vocab, merges, specialTokensMap },
    {
      vocab: describe(sources.vocab),
      merges: describe(sources.merges),
      specials: sources.specialTokensMap === undefined ? undefined : describe(sources.specialTokensMap),
    },
  );
}

/**
 * A {@link CausalLM} from its config.json (parsed object or text) and `model.safetensors` bytes (F32, F16 or BF16,
 * converted to float32): the browser-safe counterpart of `CausalLM.fromPretrained`, which reads a folder.
 *
 * @param source what error messages call the weights (default `model.safetensors`).
 * @throws Error naming the bad JSON, a malformed safetensors file, or every missing / wrong-shape tensor.
 */
export function causalLMFromBuffers(
  config: string | Record<string, unknown>,
  weights: Uint8Array | ArrayBuffer,
  options: LoadOptions & { source?: string; configSource?: string } = {},
): CausalLM {
  const configSource = options.configSource ?? 'config.json';
  let raw: Record<string, unknown>;
  if (typeof config === 'string') {
    try {
      raw = JSON.parse(config) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`causalLMFromBuffers: ${configSource} is not valid JSON (${(err as Error).message}).`);
    }
  } else raw = config;
  const source = options.source ?? 'model.safetensors';
  const bytes = weights instanceof Uint8Array ? weights : new Uint8Array(weights);
  // finite: a NaN/Inf weight is refused here, by name, rather than surfacing as NaN losses later.
  const file = parseSafetensors(bytes, source, { finite: true });
  return CausalLM.fromWeights(raw, file.tensors, { ...options, source, configSource });
}

/** The files of a model in the Hugging Face layout, each from any {@link ByteSource}. */
export interface CausalLMSources {
  config: ByteSource;
  weights: ByteSource;
}

/** A {@link CausalLM} from config.json and model.safetensors given as URLs, bytes or Files (browser-safe). */
export async function loadCausalLM(sources: CausalLMSources, options: LoadOptions = {}): Promise<CausalLM> {
  const [config, weights] = await Promise.all([readText(sources.config), readBytes(sources.weights)]);
  return causalLMFromBuffers(config, weights, {
    ...options,
    source: describe(sources.weights),
    configSource: describe(sources.config),
  });
}
