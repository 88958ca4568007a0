/**
 * `relign sft`: supervised fine-tuning of the starting model on the training review sentences
 * (prompt = first words, completion = the rest; loss on the completion and its EOS). Writes the SFT model
 * directory `<runDir>/sft/` (model + tokenizer), `metrics.jsonl` and `result.json`; checkpoints go to
 * `sft/checkpoints/` (every `sft.checkpointEvery` steps and on Ctrl-C) and are removed when the stage ends.
 */
import { join } from 'node:path';
import { sft } from '@relign/lm';
import { InterruptedError, type StageContext } from '../context.js';
import { MetricsFile } from '../metrics-file.js';
import { attachConfiguredLora, disposeWithAdapter } from '../lora.js';
import { writeJson } from '../run-dir.js';
import { loadStartingModel, saveModelDir } from '../task/models.js';
import { round, taskData } from './shared.js';

export async function sftStage(ctx: StageContext): Promise<void> {
  const { cfg, run } = ctx;
  const data = await taskData(cfg);
  const start = await loadStartingModel(cfg, run, data);
  if (start.warning) ctx.progress.line(`  warning: ${start.warning}`);
  const { model, tokenizer } = start;
  try {
    // lora.enabled: SFT trains adapters only; sft/ then holds the base weights + adapter/ (see ../lora.ts).
    attachConfiguredLora(model, cfg, `${cfg.seed}/sft/lora`, start.dir ?? '');
    ctx.progress.line(
      `  starting model: ${start.source}${start.dir ? ` (${start.dir})` : ''}, ${model.numParameters()} parameters, ` +
        `vocabulary ${tokenizer.vocabSize}; ${data.sftPairs.length} SFT pairs`,
    );
    const checkpointDir = join(run.sftDir, 'checkpoints');
    const metrics = new MetricsFile(join(run.sftDir, 'metrics.jsonl'), ctx.resume);
    const task = ctx.progress.task('sft', cfg.sft.steps);
    const s = cfg.sft;
    const result = await sft(model, data.sftPairs, {
      tokenizer,
      batchSize: s.batchSize,
      lr: s.lr,
      warmupSteps: Math.min(s.warmupSteps, s.steps),
      maxSteps: s.steps,
      evalFraction: s.evalFraction,
      evalEvery: s.evalEvery,
      seed: `${cfg.seed}/sft`,
      checkpointDir,
      checkpointEvery: s.checkpointEvery,
      resume: ctx.resume,
      signal: ctx.signal,
      onMetrics: (m) => {
        metrics.write({ ...m });
        task.update(m.step, {
          loss: m['train/loss'],
          ...(m['eval/loss'] !== undefined ? { 'eval loss': m['eval/loss'] } : {}),
          'tok/s': Math.round(m['train/tokens_per_s']),
        });
      },
    });
    if (result.interrupted) throw new InterruptedError('sft', `at step ${result.steps}`);
    task.finish(
      `train loss ${result.trainLoss.toFixed(3)}` +
        (Number.isFinite(result.evalLoss)
          ? `, held-out loss ${result.evalLoss.toFixed(3)} (perplexity ${result.evalPerplexity.toFixed(1)})`
          : ''),
    );
    await saveModelDir(run.sftDir, { model, tokenizer });
    await writeJson(join(run.sftDir, 'result.json'), {
      base: { source: start.source, dir: start.dir ?? null, warning: start.warning ?? null },
      numParameters: model.numParameters(),
      steps: result.steps,
      trainLoss: round(result.trainLoss),
      evalLoss: round(result.evalLoss),
      evalPerplexity: round(result.evalPerplexity),
      numTrain: result.numTrain,
      numEval: result.numEval,
      dropped: result.dropped,
      skippedSteps: result.skippedSteps,
      tokensSeen: result.tokensSeen,
      seconds: round(result.seconds, 2),
      resumedFromStep: result.resumedFromStep ?? null,
    });
    await run.removeOwned('sft', 'checkpoints');
  } finally {
    disposeWithAdapter(model);
  }
}
