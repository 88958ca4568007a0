/**
 * The base model's files as URLs, and loading from URLs, bytes or Files: browser-safe (no file system), exported
 * by both entries of @relign/base-model.
 */
import {
  loadBpeTokenizer,
  loadCausalLM,
  type ByteSource,
  type BpeTokenizer,
  type CausalLM,
} from '@relign/lm';

/** A model with its tokenizer. */
export interface BaseModel {
  model: CausalLM;
  tokenizer: BpeTokenizer;
}

export interface LoadBaseModelOptions {
  /** Whether the weights are trainable variables (a policy to fine-tune). Default `true`. */
  trainable?: boolean;
}

/** The model's files (Hugging Face GPT-2 layout) and where each comes from. */
export interface BaseModelSources {
  config: ByteSource;
  weights: ByteSource;
  vocab: ByteSource;
  merges: ByteSource;
  specialTokensMap?: ByteSource;
}

/** File names in `model/`. */
export const BASE_MODEL_FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  vocab: 'vocab.json',
  merges: 'merges.txt',
  specialTokensMap: 'special_tokens_map.json',
} as const;

/**
 * URLs of the shipped model files. Each is a literal `new URL('../model/<file>', import.meta.url)`, the pattern
 * Vite, webpack 5, Parcel and Rollup's URL plugins recognise: the bundler copies the file into the build and
 * rewrites the URL, so `loadBaseModel()` fetches it from the site itself. In Node these are `file:` URLs.
 */
export function baseModelUrls(): Record<keyof typeof BASE_MODEL_FILES, URL> {
  return {
    config: new URL('../model/config.json', import.meta.url),
    weights: new URL('../model/model.safetensors', import.meta.url),
    vocab: new URL('../model/vocab.json', import.meta.url),
    merges: new URL('../model/merges.txt', import.meta.url),
    specialTokensMap: new URL('../model/special_tokens_map.json', import.meta.url),
  };
}

/**
 * Loads a model and its BPE tokenizer from URLs, bytes or Files: `sources` names each file, or is the URL of a
 * folder holding them (e.g. `'/models/base/'` where a site serves a copy of this package's `model/`).
 */
export async function loadBaseModelFrom(
  sources: BaseModelSources | string | URL,
  options: LoadBaseModelOptions = {},
): Promise<BaseModel> {
  let files: BaseModelSources;
  if (typeof sources === 'string' || sources instanceof URL) {
    const base = String(sources).endsWith('/') ? String(sources) : `${String(sources)}/`;
    const at = (name: string) => new URL(name, new URL(base, globalThis.location?.href ?? 'file:///'));
    files = {
      config: at(BASE_MODEL_FILES.config),
      weights: at(BASE_MODEL_FILES.weights),
      vocab: at(BASE_MODEL_FILES.vocab),
      merges: at(BASE_MODEL_FILES.merges),
      specialTokensMap: at(BASE_MODEL_FILES.specialTokensMap),
    };
  } else files = sources;
  const tokenizer = await loadBpeTokenizer(files);
  const model = await loadCausalLM(files, { trainable: options.trainable ?? true });
  return { model, tokenizer };
}
