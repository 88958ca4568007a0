/**
 * `relign generate`: samples from any checkpoint. `--model` is a model directory (config.json +
 * model.safetensors; tokenizer files there or in `--tokenizer`), or a name in the run directory: `base`
 * (the starting model), `sft`, `<run>` (its final policy), `<run>-step-<N>` (a snapshot).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CausalLM, loadTokenizer } from '@relign/lm';
import { generate, tokenizerStopOptions } from '@relign/rollout';
import { mergeSavedAdapter } from '../lora.js';
import type { RunDir } from '../run-dir.js';
import { defaultBaseModelDir } from '../task/models.js';

export interface GenerateRequest {
  /** A model directory or a run-directory name (see the module comment). */
  model: string;
  /** Directory with vocab.json + merges.txt, when the model directory has none. */
  tokenizer?: string;
  prompts: string[];
  /** Responses per prompt. Default 1. */
  n?: number;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** Resolves `--model` to a directory. */
export function resolveModelDir(model: string, run: RunDir): string {
  if (model === 'base') return defaultBaseModelDir();
  if (model === 'sft') return run.sftDir;
  const step = /^(.*)-step-(\d+)$/.exec(model);
  const candidates = [
    resolve(model),
    step ? join(run.trainDir(step[1]!), 'evalpoints', `step-${step[2]}`) : undefined,
    join(run.trainDir(model), 'final'),
  ].filter((x): x is string => x !== undefined);
  const found = candidates.find((d) => existsSync(join(d, 'config.json')));
  if (!found) {
    throw new Error(
      `generate: no model '${model}': tried ${candidates.join(', ')}. Give a model directory, or base, sft, ` +
        '<run> or <run>-step-<N> of the run directory (--run-dir).',
    );
  }
  return found;
}

/** Samples `n` responses per prompt; returns `{prompt, response, eos}` rows (prompt-major). */
export async function generateFrom(
  request: GenerateRequest,
  run: RunDir,
): Promise<{ dir: string; rows: { prompt: string; response: string; eos: boolean }[] }> {
  const dir = resolveModelDir(request.model, run);
  const tokDir = request.tokenizer ? resolve(request.tokenizer) : dir;
  if (!existsSync(join(tokDir, 'vocab.json')) && !existsSync(join(tokDir, 'tokenizer.json'))) {
    throw new Error(
      `generate: ${tokDir} has no tokenizer.json or vocab.json/merges.txt; pass --tokenizer <dir> (e.g. the run's sft/).`,
    );
  }
  const tokenizer = await loadTokenizer(tokDir);
  const model = await CausalLM.fromPretrained(dir, { trainable: false, strict: false });
  try {
    await mergeSavedAdapter(model, dir, false); // a LoRA policy's adapter/, if any
    const prompts = request.prompts.length > 0 ? request.prompts : ['The food was', 'This movie', 'I would'];
    const tokens = prompts.map((p) => {
      const ids = tokenizer.encode(p);
      return ids.length > 0 ? ids : [tokenizer.bosId ?? tokenizer.eosId];
    });
    const batch = await generate(model, tokens, {
      maxNewTokens: request.maxNewTokens ?? 32,
      temperature: request.temperature ?? 1,
      topK: request.topK ?? 0,
      topP: request.topP ?? 1,
      ...tokenizerStopOptions(tokenizer),
      responsesPerPrompt: request.n ?? 1,
      seed: request.seed ?? 0,
    });
    const rows: { prompt: string; response: string; eos: boolean }[] = [];
    const Tr = batch.responseWidth;
    for (let b = 0; b < batch.batchSize; b++) {
      const eos = batch.endedWithEos[b] === 1;
      const len = batch.responseLengths[b]! - (eos ? 1 : 0);
      rows.push({
        prompt: prompts[Math.floor(b / batch.responsesPerPrompt)]!,
        response: tokenizer.decode(batch.responseTokens.subarray(b * Tr, b * Tr + len), {
          skipSpecial: true,
        }),
        eos,
      });
    }
    return { dir, rows };
  } finally {
    model.dispose();
  }
}
