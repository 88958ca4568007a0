/**
 * The training loop shared by SFT and pretraining: shuffled batches of tokenized examples, the causal-LM
 * loss on their target tokens, AdamW with warm-up + cosine decay and global-norm clipping, periodic
 * held-out evaluation, and resumable checkpoints.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  AdamW,
  createRng,
  ensureBackend,
  rngFromState,
  warmupCosine,
  type Rng,
  type RngState,
} from '@relign/tensor';
import { collate } from '../data/collate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import type { CausalLM } from '../model/gpt2.js';
import { loadTrainingCheckpoint, saveTrainingCheckpoint, type TrainerState } from './checkpoint.js';
import { evaluateLoss } from './evaluate.js';
import { batchToTensors, causalLmLoss, disposeBatchTensors } from './loss.js';

/** One step's metrics (W&B/TensorBoard-style names). Eval fields are present on steps that evaluated. */
export interface TrainMetrics {
  /** Loop steps done (1-based after the first step). */
  step: number;
  /** Epoch of the batch just used (0-based). */
  epoch: number;
  'train/loss': number;
  'train/lr': number;
  /** Global gradient norm before clipping (NaN/Inf on a skipped step). */
  'train/grad_norm': number;
  /** Real (non-pad) tokens per second of this step, forward + backward + update. */
  'train/tokens_per_s': number;
  /** True when the loss or gradient was not finite and no parameter was changed. */
  skipped: boolean;
  'eval/loss'?: number;
  'eval/perplexity'?: number;
}

/** Options of {@link trainCausalLM}; `sft` and `pretrain` fill them from their own. */
export interface TrainLoopOptions {
  /** Examples per step. */
  batchSize: number;
  /** Id written into padded positions (may equal EOS). */
  padId: number;
  /** Peak learning rate of the warm-up + cosine schedule. */
  lr: number;
  /** Linear warm-up steps. Default 0 (min(100, 10 % of the steps) is a good choice). */
  warmupSteps?: number;
  /** Floor of the cosine decay. Default 0.1 × lr. */
  minLr?: number;
  /** AdamW decoupled weight decay (matrices and embeddings only). Default 0.01. */
  weightDecay?: number;
  /** AdamW β1. Default 0.9. */
  beta1?: number;
  /** AdamW β2. Default 0.999 (0.95–0.99 suits short pretraining runs). */
  beta2?: number;
  /** Global gradient-norm clip. Default 1.0. */
  maxGradNorm?: number;
  /** Number of steps. One of `maxSteps`, `epochs`, `maxSeconds` is required. */
  maxSteps?: number;
  /** Passes over the training examples (the last batch of an epoch may be smaller). */
  epochs?: number;
  /**
   * Wall-clock budget (seconds) when neither `maxSteps` nor `epochs` is given: after the `warmupSteps`
   * warm-up steps (whose rates do not depend on the total) the step time is measured and the total step
   * count is fixed so the run, evaluations included, fits the budget. The count is in the result and in the
   * checkpoint; rerunning with `maxSteps` set to it reproduces the run exactly. Needs `warmupSteps >= 3`.
   */
  maxSeconds?: number;
  /** Evaluate every this many steps (and always at the end). Default: only at the end. */
  evalEvery?: number;
  /** Batch size of evaluation. Default `batchSize`. */
  evalBatchSize?: number;
  /** Seed of the data order. Default 0. */
  seed?: number | string;
  /** Directory for resumable checkpoints (see `checkpoint.ts`). */
  checkpointDir?: string;
  /** Save every this many steps (and at the end, and when stopped by `signal`). Default: at the end only. */
  checkpointEvery?: number;
  /** Continue from the latest checkpoint in `checkpointDir` if there is one (else start fresh). */
  resume?: boolean;
  /** Called after every step. */
  onMetrics?: (metrics: TrainMetrics) => void;
  /** Stops the run after the current step (a checkpoint is written when `checkpointDir` is set). */
  signal?: AbortSignal;
  /** How many recent step losses `trainLoss` averages. Default 10. */
  lossWindow?: number;
}

/** What {@link trainCausalLM} returns. */
export interface TrainResult {
  /** Mean train loss of the last `lossWindow` steps (NaN if none). */
  trainLoss: number;
  /** Final held-out loss (NaN without an eval set). */
  evalLoss: number;
  /** `exp(evalLoss)`. */
  evalPerplexity: number;
  /** Loop steps done in total (resumed segments included). */
  steps: number;
  /** The schedule's total steps. */
  totalSteps: number;
  /** Steps whose update was skipped (non-finite loss or gradient, or beyond the update guard of AdamW.guardedStep). */
  skippedSteps: number;
  /** Real tokens processed. */
  tokensSeen: number;
  /** Wall-clock training seconds (evaluations included), over all segments. */
  seconds: number;
  /** True when `signal` stopped the run before `totalSteps`. */
  interrupted: boolean;
  /** Step the run resumed from (undefined for a fresh start). */
  resumedFromStep?: number;
}

/** Epoch-wise shuffled order over `n` examples with an exactly restorable position. */
class DataOrder {
  private rng: Rng;
  epoch: number;
  index: number;
  epochRng: RngState;
  private perm: number[];

  constructor(
    private readonly n: number,
    private readonly batchSize: number,
    start: { epoch: number; index: number; epochRng: RngState },
  ) {
    this.epoch = start.epoch;
    this.index = start.index;
    this.epochRng = start.epochRng;
    this.rng = rngFromState(start.epochRng);
    this.perm = this.rng.permutation(n);
  }

  /** Indices of the next batch (never crossing an epoch boundary) and the epoch they belong to. */
  next(): { indices: number[]; epoch: number } {
    if (this.index >= this.n) {
      this.epoch += 1;
      this.index = 0;
      this.epochRng = this.rng.state();
      this.perm = this.rng.permutation(this.n);
    }
    const indices = this.perm.slice(this.index, this.index + this.batchSize);
    this.index += indices.length;
    return { indices, epoch: this.epoch };
  }
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(`trainCausalLM: ${message}`);
}

/**
 * Trains `model` in place on `train` and evaluates on `evalSet`.
 *
 * Per step: the next `batchSize` examples of the epoch's seeded permutation are right-padded
 * (`collate`), the loss is the token mean of −log p over their target tokens (`causalLmLoss`), and AdamW
 * applies the gradients at `warmupCosine(step)` with global-norm clipping; a non-finite loss or gradient,
 * or an update beyond the guard of `AdamW.guardedStep`, skips the step (reported as `skipped`).
 * Deterministic for a seed on a given backend, and a run resumed from a checkpoint continues exactly where
 * the saved one stopped.
 *
 * The model's trainable variables are updated; the optimizer is created and disposed here.
 */
export async function trainCausalLM(
  model: CausalLM,
  train: readonly TokenizedExample[],
  evalSet: readonly TokenizedExample[],
  options: TrainLoopOptions,
): Promise<TrainResult> {
  // The best available backend (wasm without native packages) unless the user chose one.
  await ensureBackend();
  const {
    batchSize,
    padId,
    lr,
    warmupSteps = 0,
    weightDecay = 0.01,
    maxGradNorm = 1.0,
    seed = 0,
    lossWindow = 10,
  } = options;
  const minLr = options.minLr ?? 0.1 * lr;
  check(train.length > 0, 'the training set is empty.');
  check(
    Number.isInteger(batchSize) && batchSize >= 1,
    `batchSize must be an integer >= 1 (got ${batchSize}).`,
  );
  check(lr > 0 && Number.isFinite(lr), `lr must be > 0 (got ${lr}).`);
  check(minLr >= 0 && minLr <= lr, `minLr must be in [0, lr] (got ${minLr}).`);
  check(
    Number.isInteger(warmupSteps) && warmupSteps >= 0,
    `warmupSteps must be an integer >= 0 (got ${warmupSteps}).`,
  );
  check(maxGradNorm > 0, `maxGradNorm must be > 0 (got ${maxGradNorm}).`);
  const stepsPerEpoch = Math.ceil(train.length / batchSize);
  let totalSteps: number | undefined;
  if (options.maxSteps !== undefined) {
    check(
      Number.isInteger(options.maxSteps) && options.maxSteps >= 1,
      `maxSteps must be an integer >= 1 (got ${options.maxSteps}).`,
    );
    totalSteps = options.maxSteps;
  } else if (options.epochs !== undefined) {
    check(
      options.epochs > 0 && Number.isFinite(options.epochs),
      `epochs must be > 0 (got ${options.epochs}).`,
    );
    totalSteps = Math.max(1, Math.ceil(options.epochs * stepsPerEpoch));
  } else {
    check(options.maxSeconds !== undefined, 'give maxSteps, epochs or maxSeconds.');
    check(options.maxSeconds! > 0, `maxSeconds must be > 0 (got ${options.maxSeconds}).`);
    check(
      warmupSteps >= 3,
      `maxSeconds needs warmupSteps >= 3 to time steps before fixing the schedule (got ${warmupSteps}).`,
    );
  }
  if (totalSteps !== undefined)
    check(totalSteps >= warmupSteps, `warmupSteps (${warmupSteps}) exceeds the total steps (${totalSteps}).`);
  if (options.evalEvery !== undefined)
    check(
      Number.isInteger(options.evalEvery) && options.evalEvery >= 1,
      'evalEvery must be an integer >= 1.',
    );
  if (options.checkpointEvery !== undefined) {
    check(
      Number.isInteger(options.checkpointEvery) && options.checkpointEvery >= 1,
      'checkpointEvery must be an integer >= 1.',
    );
    check(options.checkpointDir !== undefined, 'checkpointEvery needs checkpointDir.');
  }
  check(!options.resume || options.checkpointDir !== undefined, 'resume needs checkpointDir.');
  const evalBatchSize = options.evalBatchSize ?? batchSize;
  const fingerprint = { numTrain: train.length, numEval: evalSet.length, batchSize, seed: String(seed) };

  const trainable = model.trainableVariables();
  check(trainable.size > 0, 'the model has no trainable variables (was it created with trainable: false?).');
  const optimizer = new AdamW({
    lr,
    weightDecay,
    ...(options.beta1 !== undefined ? { beta1: options.beta1 } : {}),
    ...(options.beta2 !== undefined ? { beta2: options.beta2 } : {}),
  });
  try {
    let state: TrainerState | undefined;
    if (options.resume) {
      state = await loadTrainingCheckpoint(options.checkpointDir!, model, optimizer);
      if (state !== undefined) {
        for (const key of ['numTrain', 'numEval', 'batchSize', 'seed'] as const) {
          if (state.fingerprint[key] !== fingerprint[key]) {
            throw new Error(
              `trainCausalLM: the checkpoint in ${options.checkpointDir} was made with ${key} = ${state.fingerprint[key]}, ` +
                `this run has ${fingerprint[key]}. Resume with the same data and settings, or use another checkpointDir.`,
            );
          }
        }
        if (totalSteps !== undefined && state.totalSteps !== totalSteps) {
          throw new Error(
            `trainCausalLM: the checkpoint's schedule has ${state.totalSteps} total steps, this run ${totalSteps}; ` +
              'the learning-rate schedule would change. Resume with the same maxSteps/epochs.',
          );
        }
      }
    }
    const resumedFromStep = state?.step;
    let step = state?.step ?? 0;
    totalSteps = state?.totalSteps && state.totalSteps > 0 ? state.totalSteps : totalSteps;
    let skippedSteps = state?.skippedSteps ?? 0;
    let tokensSeen = state?.tokensSeen ?? 0;
    const recentLosses = state?.recentLosses.slice() ?? [];
    let lastEval = state?.lastEval;
    const order = new DataOrder(
      train.length,
      batchSize,
      state ?? { epoch: 0, index: 0, epochRng: createRng(`train-order/${String(seed)}`).state() },
    );
    const elapsedBefore = state?.elapsedSeconds ?? 0;
    const t0 = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - t0) / 1000;
    let lastSaved = step;
    let timedFrom: { step: number; time: number } | undefined;
    let evalSeconds = 0;

    const currentState = (): TrainerState => ({
      version: 1,
      step,
      totalSteps: totalSteps ?? 0,
      optimizerStep: optimizer.step,
      epoch: order.epoch,
      index: order.index,
      epochRng: order.epochRng,
      recentLosses,
      skippedSteps,
      tokensSeen,
      elapsedSeconds: elapsed(),
      fingerprint,
      ...(lastEval ? { lastEval } : {}),
    });
    const save = async () => {
      if (options.checkpointDir === undefined || step === lastSaved) return;
      await saveTrainingCheckpoint(options.checkpointDir, model, optimizer, currentState());
      lastSaved = step;
    };
    const runEval = () => {
      const e0 = performance.now();
      const r = evaluateLoss(model, evalSet, { batchSize: evalBatchSize, padId });
      evalSeconds += (performance.now() - e0) / 1000;
      lastEval = { step, loss: r.loss, perplexity: r.perplexity };
      return r;
    };

    let interrupted = false;
    while (totalSteps === undefined || step < totalSteps) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const { indices, epoch } = order.next();
      const examples = indices.map((i) => train[i]!);
      const longest = examples.reduce((m, e) => Math.max(m, e.length), 0);
      const host = collate(examples, { padId, padTo: Math.max(longest, 2) });
      const batch = batchToTensors(host);
      // Before warm-up ends the rate does not depend on totalSteps (warmupCosine), so a time-budget run can
      // fix its total only after the warm-up.
      const rate = warmupCosine(step, {
        peak: lr,
        warmupSteps,
        totalSteps: totalSteps ?? Math.max(warmupSteps, step + 1),
        min: minLr,
      });
      const s0 = performance.now();
      let loss: number;
      let gradNorm: number;
      let skipped: boolean;
      try {
        const varList = [...trainable.values()];
        const { value, grads } = tf.variableGrads(() => causalLmLoss(model, batch), varList);
        try {
          loss = value.dataSync()[0]!;
          const byName: Record<string, tf.Tensor> = {};
          for (const [name, v] of trainable) {
            const g = grads[v.name];
            if (g !== undefined) byName[name] = g;
          }
          // Guarded: a non-finite loss or gradient, or an exploding update, skips the step (no change).
          const r = await optimizer.guardedStep(byName, trainable, { lr: rate, maxGradNorm, loss });
          gradNorm = r.gradNorm;
          skipped = r.skipped;
        } finally {
          value.dispose();
          for (const g of Object.values(grads)) g.dispose();
        }
      } finally {
        disposeBatchTensors(batch);
      }
      const stepSeconds = (performance.now() - s0) / 1000;
      step += 1;
      tokensSeen += host.numTokens;
      if (skipped) skippedSteps += 1;
      else {
        recentLosses.push(loss);
        if (recentLosses.length > lossWindow) recentLosses.shift();
      }

      const metrics: TrainMetrics = {
        step,
        epoch,
        'train/loss': loss,
        'train/lr': rate,
        'train/grad_norm': gradNorm,
        'train/tokens_per_s': host.numTokens / Math.max(stepSeconds, 1e-9),
        skipped,
      };

      if (totalSteps === undefined) {
        // Time budget: time the steps after the first of this segment (kernel set-up), then fix the
        // schedule at the end of warm-up. (A run resumed before that point times its own steps.)
        if (step >= warmupSteps) {
          const perStep =
            timedFrom !== undefined && step > timedFrom.step
              ? (performance.now() - timedFrom.time) / 1000 / (step - timedFrom.step)
              : stepSeconds;
          let perEval = 0;
          if (evalSet.length > 0 && options.evalEvery !== undefined) {
            const r = runEval();
            metrics['eval/loss'] = r.loss;
            metrics['eval/perplexity'] = r.perplexity;
            perEval = evalSeconds;
          }
          const remaining = options.maxSeconds! - elapsed() - perEval; // the final evaluation
          const evalShare = options.evalEvery !== undefined ? perEval / options.evalEvery : 0;
          totalSteps = Math.max(
            warmupSteps,
            step + Math.floor(Math.max(0, remaining) / (perStep + evalShare)),
          );
        }
        timedFrom ??= { step, time: performance.now() };
      }

      const done = totalSteps !== undefined && step >= totalSteps;
      const due = done || (options.evalEvery !== undefined && step % options.evalEvery === 0);
      if (evalSet.length > 0 && due && lastEval?.step !== step) {
        const r = runEval();
        metrics['eval/loss'] = r.loss;
        metrics['eval/perplexity'] = r.perplexity;
      }
      options.onMetrics?.(metrics);
      if (options.checkpointEvery !== undefined && step % options.checkpointEvery === 0) await save();
    }
    // A run stopped by `signal` reports its last evaluation (if any) rather than spend time on a new one.
    if (!interrupted && evalSet.length > 0 && lastEval?.step !== step) runEval();
    await save();
    const trainLoss =
      recentLosses.length > 0 ? recentLosses.reduce((a, b) => a + b, 0) / recentLosses.length : Number.NaN;
    const result: TrainResult = {
      trainLoss,
      evalLoss: lastEval?.loss ?? Number.NaN,
      evalPerplexity: lastEval?.perplexity ?? Number.NaN,
      steps: step,
      totalSteps: totalSteps ?? step,
      skippedSteps,
      tokensSeen,
      seconds: elapsed(),
      interrupted,
    };
    if (resumedFromStep !== undefined) result.resumedFromStep = resumedFromStep;
    return result;
  } finally {
    optimizer.dispose();
  }
}
