/**
 * @relign/base-model — relign's small default base model, shipped as files next to this package's dist/
 * (`model/`: config.json, model.safetensors, vocab.json, merges.txt, special_tokens_map.json, training.json),
 * and a loader. A package of its own so that `@relign/lm` users who bring their own model never download it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer, CausalLM } from '@relign/lm';
import type { BaseModel, LoadBaseModelOptions } from './files.js';

// Browser-safe: file URLs, and loading from URLs, bytes or Files (the whole API of the browser entry).
export * from './files.js';

/**
 * The directory holding the model in the Hugging Face GPT-2 layout; pass it wherever a model directory is
 * taken (`CausalLM.fromPretrained`, `BpeTokenizer.fromDirectory`, the `relign` CLI's `--model.base`).
 */
export function baseModelDir(): string {
  // src/ and dist/ are both one level below the package root (tsup shims import.meta.url in the CJS build).
  return fileURLToPath(new URL('../model', import.meta.url));
}

/**
 * Loads the base model and its tokenizer. Call `initBackend()` of `@relign/tensor` first to choose the
 * backend (tfjs otherwise uses the first registered one). The caller owns the model: `model.dispose()`.
 *
 * @throws Error naming the directory when the model files are missing (a broken install).
 */
export async function loadBaseModel(options: LoadBaseModelOptions = {}): Promise<BaseModel> {
  const dir = baseModelDir();
  for (const file of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt']) {
    if (!existsSync(`${dir}/${file}`)) {
      throw new Error(
        `@relign/base-model: ${dir}/${file} is missing; reinstall the package (npm install @relign/base-model).`,
      );
    }
  }
  const tokenizer = await BpeTokenizer.fromDirectory(dir);
  const model = await CausalLM.fromPretrained(dir, { trainable: options.trainable ?? true });
  return { model, tokenizer };
}
