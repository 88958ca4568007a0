/**
 * Model directories: the starting model of a run (`model.base`) and loading any model directory written by
 * the pipeline (a `CausalLM.save` + `BpeTokenizer.save` folder, the Hugging Face GPT-2 layout).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { baseModelDir } from '@relign/base-model';
import {
  CausalLM,
  DEFAULT_PRETRAIN_MODEL,
  GPT2_EOS,
  loadTokenizer,
  saveTokenizer,
  trainBpe,
  type LmTokenizer,
} from '@relign/lm';
import { mergeSavedAdapter, saveAdapterIfAny } from '../lora.js';
import { resolveBaseModelDir, saveGenerationConfig } from '../model-source.js';
import type { RelignConfig } from '../config/schema.js';
import type { RunDir } from '../run-dir.js';
import type { TaskData } from './data.js';

/** A language model with its tokenizer. */
export interface ModelAndTokenizer {
  model: CausalLM;
  tokenizer: LmTokenizer;
}

/** The default base model: the directory of `@relign/base-model` (`baseModelDir()`). */
export function defaultBaseModelDir(): string {
  return baseModelDir();
}

/**
 * Loads a model directory: config.json + safetensors of any architecture CausalLM reads, its tokenizer
 * (`loadTokenizer`: tokenizer.json first, else GPT-2 vocab.json + merges.txt) and, for a LoRA-trained policy,
 * its `adapter/` merged into the weights.
 */
export async function loadModelDir(
  dir: string,
  options: { trainable?: boolean } = {},
): Promise<ModelAndTokenizer> {
  if (!existsSync(join(dir, 'config.json'))) {
    throw new Error(`${dir} is not a model directory (no config.json).`);
  }
  const tokenizer = await loadTokenizer(dir);
  const trainable = options.trainable ?? true;
  const model = await CausalLM.fromPretrained(dir, { trainable, strict: false });
  try {
    await mergeSavedAdapter(model, dir, trainable);
  } catch (e) {
    model.dispose();
    throw e;
  }
  if (tokenizer.vocabSize > model.config.vocab_size) {
    model.dispose();
    throw new Error(
      `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${model.config.vocab_size}.`,
    );
  }
  return { model, tokenizer };
}

/** Saves a model and its tokenizer into one directory (a LoRA policy: base weights + `adapter/`). */
export async function saveModelDir(dir: string, m: ModelAndTokenizer): Promise<void> {
  await m.model.save(dir);
  await saveTokenizer(m.tokenizer, dir);
  await saveGenerationConfig(m.tokenizer, dir);
  await saveAdapterIfAny(m.model, dir);
}

/** A fresh model of the given shape with a byte-level BPE vocabulary trained on the SFT texts. */
function scratchModel(
  data: TaskData,
  shape: { vocabSize: number; nLayer: number; nEmbd: number; nHead: number; nPositions: number },
  seed: number,
): ModelAndTokenizer {
  const tokenizer = trainBpe(
    data.sftPairs.map((s) => s.prompt + s.completion),
    {
      vocabSize: shape.vocabSize,
      specialTokens: [GPT2_EOS],
      roles: { eos: GPT2_EOS, pad: GPT2_EOS, bos: GPT2_EOS },
    },
  );
  const model = CausalLM.create(
    {
      vocab_size: tokenizer.vocabSize,
      n_positions: shape.nPositions,
      n_embd: shape.nEmbd,
      n_layer: shape.nLayer,
      n_head: shape.nHead,
      bos_token_id: tokenizer.eosId,
      eos_token_id: tokenizer.eosId,
    },
    `${seed}/scratch`,
  );
  return { model, tokenizer };
}

/** Where a run's starting model comes from, for the record. */
export interface StartingModel extends ModelAndTokenizer {
  /** `'default'`, `'scratch'`, `'pretrain'` or the directory. */
  source: string;
  /** The directory loaded, when one was. */
  dir?: string;
  /** Set when the requested model was unavailable and a substitute was used. */
  warning?: string;
}

/**
 * The starting model of the pipeline (`model.base`):
 * - `'default'`: the base model of `@relign/base-model` (while it is absent, a fresh model of its shape
 *   with a note: the pipeline still runs, the samples are then noise);
 * - `'scratch'`: a fresh model of `model.scratch`'s shape and a tokenizer trained on the reviews;
 * - `'pretrain'`: the run's `pretrain/` directory (`relign pretrain`);
 * - a model folder (gpt2, llama, qwen2, qwen3) or a Hub id (`model.revision`; see ../model-source.ts).
 */
export async function loadStartingModel(
  cfg: RelignConfig,
  run: RunDir,
  data: TaskData,
): Promise<StartingModel> {
  const base = cfg.model.base;
  if (base === 'scratch') return { ...scratchModel(data, cfg.model.scratch, cfg.seed), source: 'scratch' };
  if (base === 'default') {
    const dir = defaultBaseModelDir();
    if (existsSync(join(dir, 'model.safetensors')))
      return { ...(await loadModelDir(dir)), source: 'default', dir };
    return {
      ...scratchModel(
        data,
        {
          vocabSize: 1024,
          nLayer: DEFAULT_PRETRAIN_MODEL.n_layer,
          nEmbd: DEFAULT_PRETRAIN_MODEL.n_embd,
          nHead: DEFAULT_PRETRAIN_MODEL.n_head,
          nPositions: DEFAULT_PRETRAIN_MODEL.n_positions,
        },
        cfg.seed,
      ),
      source: 'default',
      warning:
        `the base model of @relign/base-model is missing (${dir}); using a freshly initialised model of its ` +
        'shape instead. Reinstall @relign/base-model, or run `relign pretrain` and set model.base: pretrain.',
    };
  }
  if (base === 'pretrain') {
    const dir = run.pretrainDir;
    if (!existsSync(join(dir, 'model.safetensors'))) {
      throw new Error(`model.base is 'pretrain' but ${dir} holds no model: run \`relign pretrain\` first.`);
    }
    return { ...(await loadModelDir(dir)), source: 'pretrain', dir };
  }
  const dir = await resolveBaseModelDir(base, { revision: cfg.model.revision });
  return { ...(await loadModelDir(dir)), source: base, dir };
}
