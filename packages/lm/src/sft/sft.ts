/**
 * Supervised fine-tuning on prompt/completion pairs: the loss covers the completion tokens and the EOS
 * that ends them, never the prompt (TRL's `completion_only_loss`).
 */
import { createRng } from '@relign/tensor';
import { readSftJsonl, tokenizeSftRows, type SftRow } from '../data/sft-rows.js';
import type { TextTokenizer, TokenizeResult } from '../data/tokenize.js';
import type { CausalLM } from '../model/causal-lm.js';
import { trainCausalLM, type TrainLoopOptions, type TrainResult } from '../train/causal-lm.js';

/**
 * Rows in any TRL SFT format (`{prompt, completion}` as text or message lists, `{messages}`), or the path of a
 * JSONL file of them (`readSftJsonl`). Conversational rows need a tokenizer with a chat template.
 */
export type SftDataset = readonly SftRow[] | string;

export interface SftOptions extends Omit<TrainLoopOptions, 'padId' | 'maxSeconds'> {
  /** Encodes prompts and completions; its `eosId` ends every completion, its `padId` fills batches. */
  tokenizer: TextTokenizer;
  /**
   * Fraction of `dataset` held out for evaluation (a seeded random subset, at least one example when the
   * fraction is > 0). Default 0.1; 0 disables evaluation. Ignored when `evalDataset` is given.
   */
  evalFraction?: number;
  /** A separate evaluation set (pairs or a JSONL path). */
  evalDataset?: SftDataset;
  /** Longest example in tokens. Default and maximum: the model's `n_positions`. */
  maxLength?: number;
  /** What to do with a completion that does not fit (see `tokenizePromptCompletion`). Default 'drop'. */
  overflow?: 'drop' | 'truncate';
  /** Prepend the tokenizer's BOS to every prompt. Default false. */
  addBos?: boolean;
}

/** {@link TrainResult} plus what happened to the data. */
export interface SftResult extends TrainResult {
  /** Training / evaluation examples used after tokenization. */
  numTrain: number;
  numEval: number;
  /** Examples dropped because the completion did not fit `maxLength` (train + eval). */
  dropped: number;
  /** Examples whose prompt was cut from the left (train + eval). */
  promptTruncated: number;
  /** Examples whose completion was cut, without EOS (train + eval; only with `overflow: 'truncate'`). */
  completionTruncated: number;
}

async function resolveDataset(data: SftDataset, what: string): Promise<readonly SftRow[]> {
  if (typeof data === 'string') return readSftJsonl(data);
  if (!Array.isArray(data))
    throw new Error(
      `sft: ${what} must be an array of {prompt, completion} / {messages} rows or a JSONL path.`,
    );
  return data;
}

/**
 * Fine-tunes `model` in place on prompt/completion pairs.
 *
 * Each example is `prompt ++ completion ++ EOS`; the loss is the token mean of −log p over the completion
 * tokens and the EOS (`logprobsFromLogits` on logits `[:, :-1]` vs ids `[:, 1:]`, docs/algorithms.md §0), located by the
 * prompt length and the example length, never by pad ids (so it is right when `pad == eos`). Training uses
 * AdamW with linear warm-up and cosine decay to `minLr`, global-norm clipping (`maxGradNorm`, default 1.0),
 * and skips updates whose loss or gradient is not finite. Evaluation reports the held-out token-mean loss
 * and its perplexity. Deterministic under `seed` (data split and order); with `checkpointDir` it saves
 * model, optimizer, RNG and data position, and `resume: true` continues the latest checkpoint exactly.
 *
 * @param model trained in place (its trainable variables).
 * @param dataset pairs, or a JSONL path (`{"prompt": ..., "completion": ...}` per line).
 * @returns final metrics: `trainLoss` (mean of the last steps), `evalLoss`, `evalPerplexity`, `steps`, ...
 */
export async function sft(model: CausalLM, dataset: SftDataset, options: SftOptions): Promise<SftResult> {
  const { tokenizer, seed = 0, overflow = 'drop', addBos = false } = options;
  if (!tokenizer || typeof tokenizer.encode !== 'function')
    throw new Error('sft: options.tokenizer is required (a BpeTokenizer).');
  if (tokenizer.eosId >= model.config.vocab_size || tokenizer.padId >= model.config.vocab_size) {
    throw new Error(
      `sft: the tokenizer's eosId ${tokenizer.eosId} / padId ${tokenizer.padId} are outside the model's vocab_size ` +
        `${model.config.vocab_size}; use the tokenizer the model was trained with.`,
    );
  }
  const maxLength = options.maxLength ?? model.dims.maxPositions;
  if (maxLength > model.dims.maxPositions) {
    throw new Error(
      `sft: maxLength ${maxLength} exceeds the model's n_positions ${model.dims.maxPositions}.`,
    );
  }
  const all = await resolveDataset(dataset, 'dataset');
  let trainPairs: readonly SftRow[] = all;
  let evalPairs: readonly SftRow[] = [];
  if (options.evalDataset !== undefined) {
    evalPairs = await resolveDataset(options.evalDataset, 'evalDataset');
  } else {
    const fraction = options.evalFraction ?? 0.1;
    if (!(fraction >= 0 && fraction < 1))
      throw new Error(`sft: evalFraction must be in [0, 1) (got ${fraction}).`);
    const k = fraction > 0 && all.length >= 2 ? Math.max(1, Math.round(fraction * all.length)) : 0;
    if (k > 0) {
      const held = new Set(
        createRng(`sft-eval-split/${String(seed)}`)
          .permutation(all.length)
          .slice(0, k),
      );
      trainPairs = all.filter((_, i) => !held.has(i));
      evalPairs = all.filter((_, i) => held.has(i));
    }
  }
  const tok = (pairs: readonly SftRow[]): TokenizeResult =>
    tokenizeSftRows(pairs, tokenizer, { maxLength, overflow, addBos });
  const train = tok(trainPairs);
  const evalSet = tok(evalPairs);
  if (train.examples.length === 0) {
    throw new Error(
      `sft: no training example left (${trainPairs.length} given, ${train.dropped} dropped because the completion ` +
        `does not fit maxLength ${maxLength}). Shorten the completions or use overflow: 'truncate'.`,
    );
  }
  const result = await trainCausalLM(model, train.examples, evalSet.examples, {
    ...options,
    padId: tokenizer.padId,
    seed,
  });
  return {
    ...result,
    numTrain: train.examples.length,
    numEval: evalSet.examples.length,
    dropped: train.dropped + evalSet.dropped,
    promptTruncated: train.promptTruncated + evalSet.promptTruncated,
    completionTruncated: train.completionTruncated + evalSet.completionTruncated,
  };
}
