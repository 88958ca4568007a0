/**
 * Bring your own model: `model.base` as a local model folder or a Hugging Face Hub id (`org/name`, at
 * `model.revision`), any architecture `CausalLM.fromPretrained` reads (gpt2, llama, qwen2, qwen3), with the
 * folder's own tokenizer (`tokenizer.json` → HfTokenizer; GPT-2 `vocab.json` + `merges.txt` → BpeTokenizer).
 *
 * Hub downloads go through @relign/lm's `resolveModelDir` into the shared Hugging Face cache, which honours
 * HF_TOKEN, HF_HUB_OFFLINE, HF_ENDPOINT and HF_HOME itself.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { HfTokenizer, resolveModelDir, type LmTokenizer } from '@relign/lm';

/** The names `model.base` reserves for relign's own starting models. */
export const RESERVED_BASES = ['default', 'scratch', 'pretrain'] as const;

/**
 * The local folder of `model.base`: the folder itself when it exists, else the Hub snapshot of the id
 * (downloaded once into the cache).
 * @throws Error naming model.base and the fix when it is neither a model folder nor a reachable Hub model.
 */
export async function resolveBaseModelDir(
  base: string,
  options: { revision?: string; endpoint?: string; cacheDir?: string } = {},
): Promise<string> {
  let dir: string;
  try {
    dir = await resolveModelDir(base, {
      ...(options.revision ? { revision: options.revision } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    });
  } catch (e) {
    throw new Error(
      `model.base: ${(e as Error).message} (model.base takes 'default', 'scratch', 'pretrain', a model folder ` +
        'or a Hub id such as HuggingFaceTB/SmolLM2-135M-Instruct.)',
      { cause: e },
    );
  }
  if (!existsSync(join(dir, 'config.json'))) {
    throw new Error(
      `model.base: ${dir} is not a model folder (no config.json); point it at a Hugging Face model folder ` +
        '(config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt).',
    );
  }
  return dir;
}

/** Hub ids as `resolveModelDir` accepts them: `name` or `org/name`. */
const HUB_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

/**
 * The preflight check of a folder or Hub id `model.base` (before any stage runs): what is wrong, or undefined.
 * A Hub id is only checked for its form here (the download happens in the stage that needs it).
 */
export function baseModelProblem(base: string): string | undefined {
  const dir = resolve(base);
  if (!existsSync(dir)) {
    if (HUB_ID.test(base) && base.includes('/') && !base.includes('..') && !base.includes('--'))
      return undefined;
    return (
      `model.base: ${dir} does not exist and is not a Hub id (org/name). Use 'default', 'scratch', 'pretrain', ` +
      'a model folder or a Hub id such as HuggingFaceTB/SmolLM2-135M-Instruct.'
    );
  }
  const has = (f: string) => existsSync(join(dir, f));
  const missing: string[] = [];
  if (!has('config.json')) missing.push('config.json');
  if (!has('model.safetensors') && !has('model.safetensors.index.json')) missing.push('model.safetensors');
  if (!has('tokenizer.json') && !(has('vocab.json') && has('merges.txt')))
    missing.push('tokenizer.json (or vocab.json + merges.txt)');
  return missing.length > 0
    ? `model.base: ${dir} lacks ${missing.join(', ')} (a model folder in the Hugging Face layout has them)`
    : undefined;
}

/**
 * Writes `generation_config.json` for a Hugging Face tokenizer: its stop ids (e.g. Llama-3 instruct's
 * `<|eot_id|>` besides EOS) live there, not in the tokenizer files, and a saved policy must stop where the
 * base model did. relign's GPT-2 BPE stops on EOS alone and needs none.
 */
export async function saveGenerationConfig(tokenizer: LmTokenizer, dir: string): Promise<void> {
  if (!(tokenizer instanceof HfTokenizer)) return;
  const stops = tokenizer.stopIds;
  const config = {
    ...(tokenizer.bosId !== undefined ? { bos_token_id: tokenizer.bosId } : {}),
    eos_token_id: stops.length > 1 ? [...stops] : tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  };
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify(config, null, 2) + '\n');
}
