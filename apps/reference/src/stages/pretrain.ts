/**
 * `relign pretrain`: trains a base model with the recipe of @relign/lm (`pretrain`: a BPE vocabulary and a
 * GPT-2-architecture model on the Brown corpus plus the training review sentences) into `<runDir>/pretrain/`.
 * The default pipeline starts from the base model of @relign/base-model instead; set `model.base: pretrain` to use this.
 */
import { join } from 'node:path';
import {
  DEFAULT_SAMPLE_PROMPTS,
  loadDefaultPretrainCorpus,
  pretrain,
  trainBpe,
  type TrainTokenizer,
} from '@relign/lm';
import { InterruptedError, type StageContext } from '../context.js';
import { MetricsFile } from '../metrics-file.js';
import { writeJson } from '../run-dir.js';
import type { RelignConfig } from '../config/schema.js';

/** The stage's BPE trainer: `trainBpe` with `pretrain.bpeMinFrequency`. */
export function pretrainTokenizer(cfg: RelignConfig): TrainTokenizer {
  return (texts, options) => trainBpe(texts, { ...options, minFrequency: cfg.pretrain.bpeMinFrequency });
}

export async function pretrainStage(ctx: StageContext): Promise<void> {
  const { cfg, run } = ctx;
  const p = cfg.pretrain;
  const corpus = await loadDefaultPretrainCorpus({ seed: cfg.seed });
  const metrics = new MetricsFile(join(run.pretrainDir, 'metrics.jsonl'), ctx.resume);
  const task = ctx.progress.task('pretrain', p.steps);
  const report = await pretrain({
    train: corpus.train,
    heldOut: corpus.heldOut,
    vocabSize: p.vocabSize,
    trainTokenizer: pretrainTokenizer(cfg),
    model: { n_layer: p.nLayer, n_embd: p.nEmbd, n_head: p.nHead, n_positions: p.nPositions },
    batchSize: p.batchSize,
    lr: p.lr,
    warmupSteps: Math.min(p.warmupSteps, p.steps),
    maxSteps: p.steps,
    evalEvery: p.evalEvery,
    evalBlocks: p.evalBlocks,
    ...(p.heldOutBlocks > 0 ? { heldOutBlocks: p.heldOutBlocks } : {}),
    samplePrompts: DEFAULT_SAMPLE_PROMPTS.slice(0, p.samples),
    sampleTokens: p.sampleTokens,
    seed: cfg.seed,
    outDir: run.pretrainDir,
    checkpointDir: join(run.pretrainDir, 'checkpoints'),
    checkpointEvery: p.evalEvery,
    resume: ctx.resume,
    signal: ctx.signal,
    dataDescription: corpus.description,
    log: (line) => ctx.progress.line(`  ${line}`),
    onMetrics: (m) => {
      metrics.write({ ...m });
      task.update(m.step, {
        loss: m['train/loss'],
        ...(m['eval/loss'] !== undefined ? { 'eval loss': m['eval/loss'] } : {}),
      });
    },
  });
  report.model.dispose();
  if (report.train.interrupted) throw new InterruptedError('pretrain', `at step ${report.train.steps}`);
  task.finish(
    `held-out perplexity ${report.heldOut.perplexity.toFixed(1)} (unigram ${report.unigram.perplexity.toFixed(1)})`,
  );
  await writeJson(join(run.pretrainDir, 'result.json'), {
    steps: report.train.steps,
    heldOut: report.heldOut,
    unigram: { loss: report.unigram.loss, perplexity: report.unigram.perplexity },
    seconds: report.train.seconds,
  });
}
