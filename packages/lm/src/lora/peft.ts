/**
 * LoRA adapters on disk in PEFT's layout, so `PeftModel.from_pretrained(base, dir)` loads what relign saves
 * and relign loads what PEFT saves:
 * ```
 * adapter_config.json          peft_type "LORA", r, lora_alpha, lora_dropout, target_modules, ...
 * adapter_model.safetensors    base_model.model.<module path>.lora_A.weight [r, in], ...lora_B.weight [out, r]
 * ```
 * Module paths are those of the Hugging Face `*ForCausalLM` class: GPT-2's modules sit under `transformer.`
 * (relign's GPT-2 parameter names, like HF's GPT2Model files, lack that prefix), Llama/Qwen's under `model.`.
 */
import * as tf from '@tensorflow/tfjs-core';
// `@relign/tensor`'s file access: node:fs in Node.js, a stand-in that rejects in a browser bundle.
import { nodeFs, nodePath } from '@relign/tensor';
import type { CausalLM } from '../model/index.js';
import { readSafetensors, writeFileAtomic, writeSafetensors } from '../model/io.js';
import { loraVariableName, type LoraAdapter } from './adapter.js';
import { attachLora } from './attach.js';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  adapterConfigJSON,
  parseAdapterConfig,
  type LoraOptions,
} from './config.js';

const { mkdir, readFile } = nodeFs;
const { join } = nodePath;

const PEFT_PREFIX = 'base_model.model.';
/** relign's GPT-2 names (`h.0.attn.c_attn`) as GPT2LMHeadModel paths (`transformer.h.0.attn.c_attn`). */
const GPT2_BLOCK = /^h\.\d+\./;

/** The PEFT key of module `name`'s A or B. */
export function peftKey(name: string, which: 'A' | 'B'): string {
  const path = GPT2_BLOCK.test(name) ? `transformer.${name}` : name;
  return `${PEFT_PREFIX}${loraVariableName(path, which)}`;
}

/** The relign variable name (`<module>.lora_A.weight`) of a PEFT key, or undefined if it is not a LoRA key. */
function fromPeftKey(key: string): string | undefined {
  if (!key.startsWith(PEFT_PREFIX)) return undefined;
  let rest = key.slice(PEFT_PREFIX.length);
  // Older PEFT versions kept the adapter name in the key (`lora_A.default.weight`).
  rest = rest.replace(/\.lora_([AB])\.default\.weight$/, '.lora_$1.weight');
  if (!/\.lora_[AB]\.weight$/.test(rest)) return undefined;
  if (rest.startsWith('transformer.') && GPT2_BLOCK.test(rest.slice('transformer.'.length))) {
    rest = rest.slice('transformer.'.length);
  }
  return rest;
}

/** Writes `dir/adapter_config.json` and `dir/adapter_model.safetensors` (created; each file atomic). */
export async function saveLoraAdapter(adapter: LoraAdapter, dir: string): Promise<void> {
  const specs = adapter.moduleSpecs();
  const vars = adapter.variables();
  await mkdir(dir, { recursive: true });
  const tensors = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>();
  for (const m of specs) {
    for (const which of ['A', 'B'] as const) {
      const v = vars.get(loraVariableName(m.name, which))!;
      tensors.set(peftKey(m.name, which), {
        dtype: 'float32',
        shape: v.shape.slice(),
        data: (await v.data()) as Float32Array,
      });
    }
  }
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  const fanInFanOut = specs.some((m) => m.fanInFanOut);
  await writeFileAtomic(
    join(dir, ADAPTER_CONFIG_FILE),
    JSON.stringify(adapterConfigJSON(adapter.config, fanInFanOut), null, 2) + '\n',
  );
}

/** Reads and checks `dir/adapter_config.json`. */
export async function readAdapterConfig(dir: string): Promise<LoraOptions> {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(
      `LoRA: cannot read ${path} (${(err as Error).message}). A PEFT adapter directory holds ` +
        `${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}.`,
      { cause: err },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`LoRA: ${path} is not valid JSON (${(err as Error).message})`);
  }
  return parseAdapterConfig(raw, path);
}

/**
 * Assigns the A/B tensors of `dir/adapter_model.safetensors` to `adapter`'s variables.
 * @throws Error listing every missing, unexpected or wrong-shape tensor (nothing is assigned then).
 */
export async function loadLoraWeights(adapter: LoraAdapter, dir: string): Promise<void> {
  const path = join(dir, ADAPTER_WEIGHTS_FILE);
  const { tensors } = await readSafetensors(path, { finite: true });
  const vars = adapter.variables();
  const found = new Map<string, { shape: number[]; data: Float32Array }>();
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [key, t] of tensors) {
    const name = fromPeftKey(key);
    const v = name === undefined ? undefined : vars.get(name);
    if (v !== undefined) seen.add(name!);
    if (v === undefined) {
      problems.push(`unexpected tensor ${key}`);
    } else if (t.dtype !== 'float32') {
      problems.push(`${key} has dtype ${t.dtype}, expected a floating-point tensor`);
    } else if (t.shape.length !== 2 || t.shape[0] !== v.shape[0] || t.shape[1] !== v.shape[1]) {
      problems.push(`${key} has shape [${t.shape}], expected [${v.shape}]`);
    } else {
      found.set(name!, { shape: t.shape, data: t.data as Float32Array });
    }
  }
  const missing = [...vars.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0) problems.push(`missing tensors for ${missing.join(', ')}`);
  if (problems.length > 0) {
    throw new Error(
      `LoRA: ${path} does not match the adapter (r=${adapter.config.r}, ` +
        `${adapter.moduleSpecs().length} modules):\n  - ${problems.join('\n  - ')}`,
    );
  }
  for (const [name, t] of found)
    tf.tidy(() => vars.get(name)!.assign(tf.tensor2d(t.data, t.shape as [number, number])));
}

/**
 * Loads a PEFT LoRA adapter directory onto `model` (see {@link attachLora}): the adapter gets the file's
 * r, lora_alpha, lora_dropout and target_modules, then its weights.
 */
export async function loadLoraAdapter(
  model: CausalLM,
  dir: string,
  options: { seed?: number | string } = {},
): Promise<LoraAdapter> {
  const config = await readAdapterConfig(dir);
  const adapter = attachLora(model, {
    ...config,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
  });
  try {
    await loadLoraWeights(adapter, dir);
  } catch (err) {
    model.setProjectionHook(null);
    adapter.dispose();
    throw err;
  }
  return adapter;
}
