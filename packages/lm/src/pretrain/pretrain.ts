/**
 * Pretraining recipe of the small default base model: train a byte-level BPE vocabulary on the text, pack
 * the token stream into blocks, train a GPT-2-architecture model on them with the SFT training loop, and
 * report held-out perplexity against a unigram baseline, with samples.
 */
import { createRng, writeFileAtomic, nodeFs, nodePath } from '@relign/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2ConfigInput } from '../model/config.js';
import { CausalLM } from '../model/causal-lm.js';
import { BpeTokenizer, GPT2_EOS } from '../tokenizer/bpe-tokenizer.js';
import { trainBpe, type TrainBpeOptions } from '../tokenizer/train.js';
import { evaluateLoss } from '../sft/evaluate.js';
import { trainCausalLM, type TrainMetrics, type TrainResult } from '../train/causal-lm.js';
import { packDocuments } from './pack.js';
import { sampleTokens } from './sample.js';
import { unigramBaseline, type UnigramResult } from './unigram.js';

// Node built-ins through @relign/tensor's platform module: a browser bundle gets stand-ins that fail clearly.
const { mkdir } = nodeFs;
const { join } = nodePath;

/** Trains a BPE vocabulary; the tokenizer module's {@link trainBpe} by default. */
export type TrainTokenizer = (texts: Iterable<string>, options: TrainBpeOptions) => BpeTokenizer;

/** The default model shape: ~1M parameters at V = 1024. */
export const DEFAULT_PRETRAIN_MODEL = { n_layer: 4, n_embd: 128, n_head: 4, n_positions: 128 } as const;

export interface PretrainOptions {
  /** Training documents (paragraphs, sentences); `<|endoftext|>` separates them in the token stream. */
  train: readonly string[];
  /** Held-out documents for perplexity. */
  heldOut: readonly string[];
  /** A ready tokenizer. When absent, one is trained on `train` with `trainTokenizer`. */
  tokenizer?: BpeTokenizer;
  /** BPE trainer used when `tokenizer` is absent. Default `trainBpe`. */
  trainTokenizer?: TrainTokenizer;
  /** Vocabulary size, special token included. Default 1024. */
  vocabSize?: number;
  /** Characters of training text the BPE trainer sees (the first documents). Default: all. */
  tokenizerChars?: number;
  /** Model shape overrides (vocab size and special ids come from the tokenizer). Default {@link DEFAULT_PRETRAIN_MODEL}. */
  model?: Partial<Omit<GPT2ConfigInput, 'vocab_size'>>;
  /** Sequences per step. Default 8 (8 × 128 = 1024 tokens). */
  batchSize?: number;
  /** Peak learning rate. Default 3e-3. */
  lr?: number;
  /** Default 100. */
  warmupSteps?: number;
  /** Default 0.1 × lr. */
  minLr?: number;
  /** Default 0.1. */
  weightDecay?: number;
  /** AdamW β2. Default 0.99. */
  beta2?: number;
  /** Default 1.0. */
  maxGradNorm?: number;
  /** Exact number of steps (reproducible); otherwise `maxSeconds` fixes it after warm-up. */
  maxSteps?: number;
  /**
   * Wall-clock budget of the whole recipe in seconds (tokenizer training, encoding, training, the final
   * held-out evaluation, sampling): the training loop gets what remains after the preparation and an
   * estimate of the final evaluation, and fixes its step count after warm-up (see `trainCausalLM`).
   */
  maxSeconds?: number;
  /** Evaluate on (up to `evalBlocks` of) the held-out blocks every this many steps. Default 200. */
  evalEvery?: number;
  /** Held-out blocks used by the periodic evaluation (a seeded subset). Default 128. */
  evalBlocks?: number;
  /**
   * Held-out blocks scored by the final evaluation and the unigram baseline (a seeded subset, the same for
   * both). Default: all of them. A short run (CI, a slow adapter) sets a few so that the closing evaluation
   * does not outlast the training.
   */
  heldOutBlocks?: number;
  /** Seed of initialisation, data order and sampling. Default 0. */
  seed?: number;
  /** Where to write the model, tokenizer and training.json. */
  outDir?: string;
  /** Resumable checkpoints of the training loop. */
  checkpointDir?: string;
  checkpointEvery?: number;
  resume?: boolean;
  /** Prompts for the reported samples ('' samples from `<|endoftext|>`). */
  samplePrompts?: readonly string[];
  /** Tokens per sample. Default 48. */
  sampleTokens?: number;
  /** Free-form description of the data, stored in training.json. */
  dataDescription?: unknown;
  /** Progress lines. */
  log?: (line: string) => void;
  onMetrics?: (m: TrainMetrics) => void;
  signal?: AbortSignal;
}

export interface PretrainReport {
  tokenizer: BpeTokenizer;
  /** The trained model (the caller disposes it). */
  model: CausalLM;
  numParameters: number;
  train: TrainResult;
  /** Final held-out loss over the held-out blocks (all, or `heldOutBlocks` of them). */
  heldOut: { loss: number; perplexity: number; targets: number; blocks: number };
  unigram: UnigramResult;
  samples: { prompt: string; text: string }[];
  /** Tokens in the packed train / held-out streams. */
  tokens: { train: number; heldOut: number };
  /** Seconds spent training the tokenizer and encoding. */
  prepSeconds: number;
  /** Eval-loss curve and smoothed train-loss curve, for the record. */
  curve: { step: number; trainLoss?: number; evalLoss?: number }[];
}

export const DEFAULT_SAMPLE_PROMPTS = [
  '',
  'The',
  'It was a',
  'This movie',
  'The food was',
  'I would',
] as const;

/** `blocks` when `n` is absent or covers them; else `n` of them chosen by a seeded rng, in their order. */
function seededSubset<T>(blocks: readonly T[], n: number | undefined, seed: string): readonly T[] {
  if (n === undefined || blocks.length <= n) return blocks;
  return createRng(seed)
    .permutation(blocks.length)
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => blocks[i]!);
}

/** A tokenizer whose `<|endoftext|>` (or the given EOS) is eos, pad and bos (GPT-2 convention). */
function withGpt2Specials(tok: BpeTokenizer, eos: string): BpeTokenizer {
  if (tok.specialTokens.eos === eos && tok.specialTokens.pad === eos && tok.specialTokens.bos === eos)
    return tok;
  const vocab: Record<string, number> = {};
  for (let id = 0; id < tok.vocabSize; id++) {
    const t = tok.idToToken(id);
    if (t !== undefined) vocab[t] = id;
  }
  return BpeTokenizer.fromVocabAndMerges(
    vocab,
    tok.merges.map(([a, b]) => [a, b] as [string, string]),
    { eos, pad: eos, bos: eos },
  );
}

/**
 * Runs the recipe and returns the report (and writes `outDir` when given):
 * 1. tokenizer: `trainTokenizer(train, {vocabSize, specialTokens: ['<|endoftext|>']})` with eos = pad = bos;
 * 2. data: documents encoded and packed into `n_positions`-token blocks with EOS between documents
 *    (`packDocuments`);
 * 3. model: `CausalLM.create({...DEFAULT_PRETRAIN_MODEL, vocab_size}, seed)` trained by `trainCausalLM`
 *    (AdamW, warm-up + cosine, clipping) for `maxSteps` or `maxSeconds`;
 * 4. report: held-out loss/perplexity over all held-out blocks (or a seeded subset of `heldOutBlocks`) vs
 *    the add-one unigram baseline on the same targets, and samples at temperature 0.8, top-k 40.
 * `outDir` receives config.json, model.safetensors, vocab.json, merges.txt, special_tokens_map.json and
 * training.json (settings, data, steps, time, losses, perplexities, samples).
 */
export async function pretrain(options: PretrainOptions): Promise<PretrainReport> {
  const log = options.log ?? (() => undefined);
  const {
    vocabSize = 1024,
    batchSize = 8,
    lr = 3e-3,
    warmupSteps = 100,
    weightDecay = 0.1,
    beta2 = 0.99,
    maxGradNorm = 1.0,
    evalEvery = 200,
    evalBlocks = 128,
    seed = 0,
    sampleTokens: sampleLength = 48,
    samplePrompts = DEFAULT_SAMPLE_PROMPTS,
  } = options;
  if (!Array.isArray(options.train) || options.train.length === 0)
    throw new Error('pretrain: train must be a non-empty array of texts.');
  if (!Array.isArray(options.heldOut) || options.heldOut.length === 0)
    throw new Error('pretrain: heldOut must be a non-empty array of texts.');
  if (options.maxSteps === undefined && options.maxSeconds === undefined)
    throw new Error('pretrain: give maxSteps or maxSeconds.');
  for (const key of ['evalBlocks', 'heldOutBlocks'] as const) {
    const n = options[key];
    if (n !== undefined && !(Number.isInteger(n) && n >= 1))
      throw new Error(`pretrain: ${key} must be an integer >= 1 (got ${n}).`);
  }
  const t0 = performance.now();

  let tokenizer = options.tokenizer;
  if (tokenizer === undefined) {
    const trainTokenizer = options.trainTokenizer ?? trainBpe;
    let texts: readonly string[] = options.train;
    if (options.tokenizerChars !== undefined) {
      let n = 0;
      const k = options.train.findIndex((t) => (n += t.length) > options.tokenizerChars!);
      if (k >= 0) texts = options.train.slice(0, k + 1);
    }
    log(`training a ${vocabSize}-token BPE vocabulary on ${texts.length} documents...`);
    const b0 = performance.now();
    tokenizer = trainTokenizer(texts, {
      vocabSize,
      specialTokens: [GPT2_EOS],
      roles: { eos: GPT2_EOS, pad: GPT2_EOS, bos: GPT2_EOS },
    });
    log(`tokenizer trained in ${((performance.now() - b0) / 1000).toFixed(1)} s`);
  }
  tokenizer = withGpt2Specials(tokenizer, tokenizer.specialTokens.eos);
  const eosId = tokenizer.eosId;
  const config: GPT2ConfigInput = {
    ...DEFAULT_PRETRAIN_MODEL,
    ...options.model,
    vocab_size: tokenizer.vocabSize,
    bos_token_id: eosId,
    eos_token_id: eosId,
  };
  const blockSize = config.n_positions;
  const trainPack = packDocuments(
    options.train.map((t) => tokenizer.encode(t)),
    { blockSize, eosId },
  );
  const heldPack = packDocuments(
    options.heldOut.map((t) => tokenizer.encode(t)),
    { blockSize, eosId },
  );
  if (trainPack.blocks.length === 0 || heldPack.blocks.length === 0) {
    throw new Error(
      `pretrain: not enough text for one ${blockSize}-token block (train ${trainPack.streamTokens}, held-out ${heldPack.streamTokens} tokens).`,
    );
  }
  const prepSeconds = (performance.now() - t0) / 1000;
  log(
    `tokens: train ${trainPack.streamTokens} (${trainPack.blocks.length} blocks of ${blockSize}), held-out ` +
      `${heldPack.streamTokens}; ${(options.train.reduce((n, t) => n + t.length, 0) / trainPack.streamTokens).toFixed(2)} chars/token; ` +
      `prep ${prepSeconds.toFixed(1)} s`,
  );
  // The final evaluation's blocks; the unigram baseline is scored on the same targets.
  const finalBlocks = seededSubset(heldPack.blocks, options.heldOutBlocks, `pretrain-final/${seed}`);
  const unigram = unigramBaseline(trainPack.blocks, finalBlocks, tokenizer.vocabSize);
  log(
    `unigram baseline (add-one): held-out loss ${unigram.loss.toFixed(4)}, perplexity ${unigram.perplexity.toFixed(1)}`,
  );

  const model = CausalLM.create(config, seed);
  try {
    log(`model: ${model.numParameters()} parameters, config ${JSON.stringify(config)}`);
    // Periodic evaluation on a fixed seeded subset of held-out blocks (cheap); the final one scores finalBlocks.
    const evalSubset = seededSubset(heldPack.blocks, evalBlocks, `pretrain-eval/${seed}`);
    let loopSeconds: number | undefined;
    if (options.maxSteps === undefined) {
      // Time the forward pass on a few held-out blocks (twice: the first call sets kernels up) to reserve
      // the final full evaluation out of the budget, plus a few seconds for sampling and saving.
      const probe = heldPack.blocks.slice(0, Math.min(heldPack.blocks.length, 2 * batchSize));
      await evaluateLoss(model, probe, { batchSize: 2 * batchSize, padId: tokenizer.padId });
      const p0 = performance.now();
      await evaluateLoss(model, probe, { batchSize: 2 * batchSize, padId: tokenizer.padId });
      const perBlock = (performance.now() - p0) / 1000 / probe.length;
      const reserve = 1.1 * perBlock * finalBlocks.length + 10;
      loopSeconds = options.maxSeconds! - (performance.now() - t0) / 1000 - reserve;
      if (loopSeconds <= 0) {
        throw new Error(
          `pretrain: maxSeconds ${options.maxSeconds} leaves no time to train (preparation took ` +
            `${((performance.now() - t0) / 1000).toFixed(0)} s, the final evaluation needs ~${reserve.toFixed(0)} s).`,
        );
      }
      log(
        `time budget: ${loopSeconds.toFixed(0)} s for the training loop (${reserve.toFixed(0)} s reserved for evaluation and samples)`,
      );
    }
    const curve: PretrainReport['curve'] = [];
    let window: number[] = [];
    const train = await trainCausalLM(model, trainPack.blocks, evalSubset, {
      batchSize,
      padId: tokenizer.padId,
      lr,
      warmupSteps,
      ...(options.minLr !== undefined ? { minLr: options.minLr } : {}),
      weightDecay,
      beta2,
      maxGradNorm,
      ...(options.maxSteps !== undefined ? { maxSteps: options.maxSteps } : { maxSeconds: loopSeconds! }),
      evalEvery,
      evalBatchSize: batchSize * 2,
      seed,
      ...(options.checkpointDir !== undefined ? { checkpointDir: options.checkpointDir } : {}),
      ...(options.checkpointEvery !== undefined ? { checkpointEvery: options.checkpointEvery } : {}),
      ...(options.resume !== undefined ? { resume: options.resume } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      onMetrics: (m) => {
        if (!m.skipped) window.push(m['train/loss']);
        const logEvery = Math.max(1, Math.floor(evalEvery / 4));
        if (m.step % logEvery === 0 || m['eval/loss'] !== undefined) {
          const trainLoss = window.length > 0 ? window.reduce((a, b) => a + b, 0) / window.length : undefined;
          window = [];
          const point: PretrainReport['curve'][number] = { step: m.step };
          if (trainLoss !== undefined) point.trainLoss = trainLoss;
          if (m['eval/loss'] !== undefined) point.evalLoss = m['eval/loss'];
          curve.push(point);
          log(
            `step ${m.step}: train ${trainLoss?.toFixed(4) ?? '-'}` +
              (m['eval/loss'] !== undefined ? `, held-out (subset) ${m['eval/loss'].toFixed(4)}` : '') +
              `, lr ${m['train/lr'].toExponential(2)}, |g| ${m['train/grad_norm'].toFixed(2)}, ${m['train/tokens_per_s'].toFixed(0)} tok/s`,
          );
        }
        options.onMetrics?.(m);
      },
    });
    const held = {
      ...(await evaluateLoss(model, finalBlocks, { batchSize: batchSize * 2, padId: tokenizer.padId })),
      blocks: finalBlocks.length,
    };
    log(
      `held-out (${finalBlocks.length} of ${heldPack.blocks.length} blocks): loss ${held.loss.toFixed(4)}, perplexity ${held.perplexity.toFixed(1)} ` +
        `(unigram ${unigram.perplexity.toFixed(1)}) after ${train.steps} steps, ${train.seconds.toFixed(0)} s`,
    );

    const rng = createRng(`pretrain-samples/${seed}`);
    // One prompt after another: the samples share `rng`.
    const samples: PretrainReport['samples'] = [];
    for (const prompt of samplePrompts) {
      const ids = [eosId, ...tokenizer.encode(prompt)];
      const gen = await sampleTokens(model, ids, {
        maxNewTokens: sampleLength,
        temperature: 0.8,
        topK: 40,
        rng,
        eosId,
      });
      samples.push({
        prompt,
        text:
          prompt +
          tokenizer.decode(gen, { skipSpecial: true }) +
          (gen[gen.length - 1] === eosId ? ' <|endoftext|>' : ' ...'),
      });
    }
    for (const s of samples) log(`sample: ${JSON.stringify(s.text)}`);

    const report: PretrainReport = {
      tokenizer,
      model,
      numParameters: model.numParameters(),
      train,
      heldOut: held,
      unigram,
      samples,
      tokens: { train: trainPack.streamTokens, heldOut: heldPack.streamTokens },
      prepSeconds,
      curve,
    };
    if (options.outDir !== undefined) {
      await mkdir(options.outDir, { recursive: true });
      await model.save(options.outDir);
      await tokenizer.save(options.outDir);
      const record = {
        recipe: '@relign/lm pretrain',
        backend: tf.getBackend(),
        settings: {
          vocabSize: tokenizer.vocabSize,
          tokenizerChars: options.tokenizerChars ?? null,
          model: config,
          batchSize,
          lr,
          minLr: options.minLr ?? 0.1 * lr,
          warmupSteps,
          weightDecay,
          beta2,
          maxGradNorm,
          maxSteps: options.maxSteps ?? null,
          maxSeconds: options.maxSeconds ?? null,
          evalEvery,
          evalBlocks,
          heldOutBlocks: options.heldOutBlocks ?? null,
          seed,
          sampling: { temperature: 0.8, topK: 40, maxNewTokens: sampleLength },
          reproduce: `set maxSteps = ${train.totalSteps} (same backend) to repeat this run exactly`,
        },
        data: options.dataDescription ?? null,
        tokens: report.tokens,
        blocks: { size: blockSize, train: trainPack.blocks.length, heldOut: heldPack.blocks.length },
        numParameters: report.numParameters,
        steps: train.steps,
        totalSteps: train.totalSteps,
        skippedSteps: train.skippedSteps,
        tokensSeen: train.tokensSeen,
        trainSeconds: Math.round(train.seconds * 10) / 10,
        prepSeconds: Math.round(prepSeconds * 10) / 10,
        finalTrainLoss: train.trainLoss,
        heldOut: { loss: held.loss, perplexity: held.perplexity, targets: held.targets, blocks: held.blocks },
        unigramBaseline: {
          loss: unigram.loss,
          perplexity: unigram.perplexity,
          smoothing: 'add-one',
          estimatedOn: 'train targets',
        },
        curve,
        samples,
      };
      await writeFileAtomic(join(options.outDir, 'training.json'), JSON.stringify(record, null, 2) + '\n');
      log(`saved to ${options.outDir}`);
    }
    return report;
  } catch (err) {
    model.dispose();
    throw err;
  }
}
