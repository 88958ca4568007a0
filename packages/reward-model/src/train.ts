/**
 * Reward-model training (docs/algorithms.md §2.2): Bradley–Terry loss on preference pairs (optional margin, optional LM
 * term on the chosen response), AdamW with warm-up + cosine decay and global-norm clipping, held-out
 * accuracy and mean margin, seeded data order, resumable checkpoints.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TextTokenizer } from '@relign/lm';
import {
  AdamW,
  createRng,
  ensureBackend,
  rngFromState,
  warmupCosine,
  type Rng,
  type RngState,
} from '@relign/tensor';
import {
  loadRewardCheckpoint,
  saveRewardCheckpoint,
  type RewardRunFingerprint,
  type RewardTrainerState,
} from './checkpoint.js';
import type { PreferenceExample } from './dataset.js';
import { evaluateRewardModel } from './evaluate.js';
import type { RewardModel } from './reward-model.js';
import { disposePairBatch, pairBatch, rewardModelLoss } from './rm-loss.js';
import { tokenizePreferencePairs, type TokenizedPair } from './tokenize-pairs.js';

/** One step's metrics. Eval fields are present on steps that evaluated. */
export interface RewardTrainMetrics {
  /** Loop steps done (1-based after the first step). */
  step: number;
  /** Epoch of the batch just used (0-based). */
  epoch: number;
  /** Total loss (Bradley–Terry + λ_lm · LM). */
  'train/loss': number;
  'train/bt_loss': number;
  /** Present when `lmCoef > 0`. */
  'train/lm_loss'?: number;
  /** Fraction of the batch's pairs with `r_c > r_r` (ties ½), before the update. */
  'train/accuracy': number;
  /** Mean `r_c − r_r` of the batch, before the update. */
  'train/margin': number;
  'train/lr': number;
  /** Global gradient norm before clipping (NaN on a skipped step). */
  'train/grad_norm': number;
  /** True when the loss or gradient was not finite and no parameter changed. */
  skipped: boolean;
  'eval/accuracy'?: number;
  'eval/margin'?: number;
  'eval/loss'?: number;
}

/** Options of {@link runRewardModelTraining}. */
export interface RewardTrainOptions {
  /** Pairs per step (each pair is two sequences in one forward pass). */
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warm-up steps. Default 0. */
  warmupSteps?: number;
  /** Floor of the cosine decay. Default 0.1 × lr. */
  minLr?: number;
  /** AdamW decoupled weight decay (matrices only). Default 0.01. */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  /** Global gradient-norm clip. Default 1.0. */
  maxGradNorm?: number;
  /** Number of steps; or give `epochs`. */
  maxSteps?: number;
  /** Passes over the training pairs. */
  epochs?: number;
  /** λ_lm of docs/algorithms.md §2.2: weight of the LM loss on the chosen response. Default 0. */
  lmCoef?: number;
  /** Loss margin for pairs without their own `margin`. Default 0. */
  margin?: number;
  /** Pad id. Default 0 (masks come from lengths). */
  padId?: number;
  /** Evaluate every this many steps (and always at the end). Default: only at the end. */
  evalEvery?: number;
  /** Pairs per eval forward pass. Default `batchSize`. */
  evalBatchSize?: number;
  /** Seed of the data order. Default 0. */
  seed?: number | string;
  /** Directory for resumable checkpoints (see `checkpoint.ts`). */
  checkpointDir?: string;
  /** Save every this many steps (and at the end, and when stopped). Default: at the end only. */
  checkpointEvery?: number;
  /** Continue from the latest checkpoint in `checkpointDir` if there is one. */
  resume?: boolean;
  /** Called after every step. */
  onMetrics?: (metrics: RewardTrainMetrics) => void;
  /** Stops the run after the current step (a checkpoint is written when `checkpointDir` is set). */
  signal?: AbortSignal;
  /** How many recent steps `trainLoss` / `trainAccuracy` average. Default 10. */
  lossWindow?: number;
}

/** What the trainers return. */
export interface RewardTrainResult {
  /** Mean train loss of the last `lossWindow` steps. */
  trainLoss: number;
  /** Mean train-batch accuracy of the last `lossWindow` steps. */
  trainAccuracy: number;
  /** Final held-out metrics (absent without an eval set). */
  eval?: { accuracy: number; meanMargin: number; loss: number; count: number };
  steps: number;
  totalSteps: number;
  skippedSteps: number;
  /** Real tokens processed (both sides of every pair). */
  tokensSeen: number;
  /** Wall-clock training seconds (evaluations included), over all segments. */
  seconds: number;
  /** True when `signal` stopped the run early. */
  interrupted: boolean;
  resumedFromStep?: number;
}

/** Epoch-wise shuffled order over `n` pairs with an exactly restorable position. */
class PairOrder {
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
  if (!cond) throw new Error(`trainRewardModel: ${message}`);
}

function mean(xs: readonly number[]): number {
  return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/**
 * Trains `rm` in place on tokenized pairs and evaluates on `evalSet`.
 *
 * Per step: the next `batchSize` pairs of the epoch's seeded permutation go through one forward pass
 * (chosen and rejected rows stacked), the loss is docs/algorithms.md §2.2's, and AdamW applies the gradients at
 * `warmupCosine(step)` with global-norm clipping; a non-finite loss or gradient, or an update beyond the
 * guard of `AdamW.guardedStep`, skips the update. Same seed and backend -> same run, and a resumed run
 * continues exactly where its checkpoint stopped.
 */
export async function runRewardModelTraining(
  rm: RewardModel,
  train: readonly TokenizedPair[],
  evalSet: readonly TokenizedPair[],
  options: RewardTrainOptions,
): Promise<RewardTrainResult> {
  // The best available backend (wasm without native packages) unless the user chose one.
  await ensureBackend();
  const {
    batchSize,
    lr,
    warmupSteps = 0,
    weightDecay = 0.01,
    maxGradNorm = 1.0,
    seed = 0,
    lossWindow = 10,
    lmCoef = 0,
    margin = 0,
    padId = 0,
  } = options;
  const minLr = options.minLr ?? 0.1 * lr;
  const evalBatchSize = options.evalBatchSize ?? batchSize;
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
  check(lmCoef >= 0 && Number.isFinite(lmCoef), `lmCoef must be a finite number >= 0 (got ${lmCoef}).`);
  check(Number.isFinite(margin), `margin must be a finite number (got ${margin}).`);
  let totalSteps: number;
  if (options.maxSteps !== undefined) {
    check(
      Number.isInteger(options.maxSteps) && options.maxSteps >= 1,
      `maxSteps must be an integer >= 1 (got ${options.maxSteps}).`,
    );
    totalSteps = options.maxSteps;
  } else {
    check(options.epochs !== undefined, 'give maxSteps or epochs.');
    check(
      options.epochs! > 0 && Number.isFinite(options.epochs!),
      `epochs must be > 0 (got ${options.epochs}).`,
    );
    totalSteps = Math.max(1, Math.ceil(options.epochs! * Math.ceil(train.length / batchSize)));
  }
  check(totalSteps >= warmupSteps, `the run has ${totalSteps} steps, fewer than warmupSteps=${warmupSteps}.`);
  if (options.resume) check(options.checkpointDir !== undefined, 'resume needs checkpointDir.');
  train.forEach((p, i) => {
    check(
      p?.chosen?.ids instanceof Int32Array && p?.rejected?.ids instanceof Int32Array,
      `train[${i}] must be a TokenizedPair {chosen, rejected} (see tokenizePreferencePairs).`,
    );
  });

  const trainable = rm.trainableVariables();
  check(trainable.size > 0, 'the reward model has no trainable variables.');
  const varList = [...trainable.values()];
  const optimizer = new AdamW({
    lr,
    weightDecay,
    ...(options.beta1 !== undefined ? { beta1: options.beta1 } : {}),
    ...(options.beta2 !== undefined ? { beta2: options.beta2 } : {}),
  });
  const fingerprint: RewardRunFingerprint = {
    numTrain: train.length,
    numEval: evalSet.length,
    batchSize,
    seed: String(seed),
    lmCoef,
    margin,
  };
  try {
    let state: RewardTrainerState | undefined;
    if (options.resume && options.checkpointDir !== undefined) {
      state = await loadRewardCheckpoint(options.checkpointDir, rm, optimizer);
      if (state !== undefined) {
        for (const key of Object.keys(fingerprint) as (keyof RewardRunFingerprint)[]) {
          if (state.fingerprint[key] !== fingerprint[key]) {
            throw new Error(
              `trainRewardModel: the checkpoint in ${options.checkpointDir} was made with ${key} = ${state.fingerprint[key]}, ` +
                `this run has ${fingerprint[key]}. Resume with the same data and settings, or use another checkpointDir.`,
            );
          }
        }
        if (state.totalSteps !== totalSteps) {
          throw new Error(
            `trainRewardModel: the checkpoint's schedule has ${state.totalSteps} total steps, this run ${totalSteps}; ` +
              'the learning-rate schedule would change. Resume with the same maxSteps/epochs.',
          );
        }
      }
    }
    const resumedFromStep = state?.step;
    let step = state?.step ?? 0;
    let skippedSteps = state?.skippedSteps ?? 0;
    let tokensSeen = state?.tokensSeen ?? 0;
    const recentLosses = state?.recentLosses.slice() ?? [];
    const recentAccuracies = state?.recentAccuracies.slice() ?? [];
    let lastEval = state?.lastEval;
    const order = new PairOrder(
      train.length,
      batchSize,
      state ?? { epoch: 0, index: 0, epochRng: createRng(`rm-train-order/${String(seed)}`).state() },
    );
    const elapsedBefore = state?.elapsedSeconds ?? 0;
    const t0 = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - t0) / 1000;
    let lastSaved = step;

    const currentState = (): RewardTrainerState => ({
      version: 1,
      kind: 'reward-model',
      step,
      totalSteps,
      optimizerStep: optimizer.step,
      epoch: order.epoch,
      index: order.index,
      epochRng: order.epochRng,
      recentLosses,
      recentAccuracies,
      skippedSteps,
      tokensSeen,
      elapsedSeconds: elapsed(),
      fingerprint,
      ...(lastEval ? { lastEval } : {}),
    });
    const save = async () => {
      if (options.checkpointDir === undefined || step === lastSaved) return;
      await saveRewardCheckpoint(options.checkpointDir, rm, optimizer, currentState());
      lastSaved = step;
    };
    const runEval = () => {
      const r = evaluateRewardModel(rm, evalSet, { batchSize: evalBatchSize, padId, margin });
      lastEval = { step, accuracy: r.accuracy, meanMargin: r.meanMargin, loss: r.loss, count: r.count };
      return lastEval;
    };

    let interrupted = false;
    while (step < totalSteps) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const { indices, epoch } = order.next();
      const batch = pairBatch(
        indices.map((i) => train[i]!),
        { padId, margin },
      );
      const rate = warmupCosine(step, { peak: lr, warmupSteps, totalSteps, min: minLr });
      let loss = Number.NaN;
      let btLoss = Number.NaN;
      let lmLoss: number | undefined;
      let accuracy = Number.NaN;
      let meanMargin = Number.NaN;
      let gradNorm = Number.NaN;
      let skipped = true;
      try {
        let extras: tf.Tensor[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const r = rewardModelLoss(rm, batch, { lmCoef });
          // Kept past variableGrads' scope for the metrics; disposed below.
          extras = [r.btLoss, r.chosen, r.rejected, ...(r.lmLoss ? [r.lmLoss] : [])].map((t) => tf.keep(t));
          return r.loss;
        }, varList);
        try {
          loss = value.dataSync()[0]!;
          btLoss = extras[0]!.dataSync()[0]!;
          const c = extras[1]!.dataSync();
          const r = extras[2]!.dataSync();
          if (extras[3] !== undefined) lmLoss = extras[3].dataSync()[0]!;
          let wins = 0;
          let sum = 0;
          for (let i = 0; i < c.length; i++) {
            const d = c[i]! - r[i]!;
            wins += d > 0 ? 1 : d === 0 ? 0.5 : 0;
            sum += d;
          }
          accuracy = wins / c.length;
          meanMargin = sum / c.length;
          const byName: Record<string, tf.Tensor> = {};
          for (const [name, v] of trainable) {
            const g = grads[v.name];
            if (g !== undefined) byName[name] = g;
          }
          // Guarded: a non-finite loss or gradient, or an exploding update, skips the step (no change).
          const res = await optimizer.guardedStep(byName, trainable, { lr: rate, maxGradNorm, loss });
          gradNorm = res.gradNorm;
          skipped = res.skipped;
        } finally {
          value.dispose();
          for (const g of Object.values(grads)) g.dispose();
          for (const t of extras) t.dispose();
        }
      } finally {
        disposePairBatch(batch);
      }
      step += 1;
      tokensSeen += batch.numTokens;
      if (skipped) skippedSteps += 1;
      else {
        recentLosses.push(loss);
        recentAccuracies.push(accuracy);
        if (recentLosses.length > lossWindow) recentLosses.shift();
        if (recentAccuracies.length > lossWindow) recentAccuracies.shift();
      }
      const metrics: RewardTrainMetrics = {
        step,
        epoch,
        'train/loss': loss,
        'train/bt_loss': btLoss,
        'train/accuracy': accuracy,
        'train/margin': meanMargin,
        'train/lr': rate,
        'train/grad_norm': gradNorm,
        skipped,
      };
      if (lmLoss !== undefined) metrics['train/lm_loss'] = lmLoss;
      const due = step >= totalSteps || (options.evalEvery !== undefined && step % options.evalEvery === 0);
      if (evalSet.length > 0 && due) {
        const e = runEval();
        metrics['eval/accuracy'] = e.accuracy;
        metrics['eval/margin'] = e.meanMargin;
        metrics['eval/loss'] = e.loss;
      }
      options.onMetrics?.(metrics);
      if (options.checkpointEvery !== undefined && step % options.checkpointEvery === 0) await save();
    }
    if (!interrupted && evalSet.length > 0 && lastEval?.step !== step) runEval();
    await save();
    const result: RewardTrainResult = {
      trainLoss: mean(recentLosses),
      trainAccuracy: mean(recentAccuracies),
      steps: step,
      totalSteps,
      skippedSteps,
      tokensSeen,
      seconds: elapsed(),
      interrupted,
    };
    if (lastEval !== undefined) {
      const { accuracy, meanMargin, loss, count } = lastEval;
      result.eval = { accuracy, meanMargin, loss, count };
    }
    if (resumedFromStep !== undefined) result.resumedFromStep = resumedFromStep;
    return result;
  } finally {
    optimizer.dispose();
  }
}

/** Options of {@link trainRewardModel}: the training options plus tokenization and the eval split. */
export interface TrainRewardModelOptions extends RewardTrainOptions {
  /** Encodes prompts and responses (EOS appended to each response). */
  tokenizer: TextTokenizer;
  /** Longest sequence. Default: the backbone's `n_positions`. */
  maxLength?: number;
  /** Fraction of pairs held out for evaluation (seeded split). Default 0.1; ignored with `evalPairs`. */
  evalFraction?: number;
  /** An explicit held-out set instead of a split. */
  evalPairs?: readonly PreferenceExample[];
  /** Prepend the tokenizer's BOS to prompts. Default false. */
  addBos?: boolean;
  /** Something the user should know (pairs dropped for length). Default `console.warn`. */
  warn?: (message: string) => void;
}

/** {@link RewardTrainResult} plus the data accounting of {@link trainRewardModel}. */
export interface TrainRewardModelResult extends RewardTrainResult {
  numTrain: number;
  numEval: number;
  /** Pairs left out because a response + EOS does not fit `maxLength`. */
  dropped: number;
  /** Pairs whose prompt was cut from the left to fit. */
  promptTruncated: number;
}

/**
 * Trains a reward model on text preference pairs (`{prompt, chosen, rejected}`, e.g. from
 * `readPreferenceJsonl` or `labelPairs`): tokenizes them, holds out a seeded `evalFraction`, and runs
 * {@link runRewardModelTraining}.
 */
export async function trainRewardModel(
  rm: RewardModel,
  pairs: readonly PreferenceExample[],
  options: TrainRewardModelOptions,
): Promise<TrainRewardModelResult> {
  const { tokenizer, evalFraction = 0.1, addBos = false, seed = 0, warn = console.warn } = options;
  check(Array.isArray(pairs), 'pairs must be an array of {prompt, chosen, rejected}.');
  check(pairs.length > 0, 'no preference pairs given (the list is empty; is the pairs file empty?).');
  check(tokenizer !== undefined && typeof tokenizer.encode === 'function', 'options.tokenizer is required.');
  check(evalFraction >= 0 && evalFraction < 1, `evalFraction must be in [0, 1) (got ${evalFraction}).`);
  const maxLength = options.maxLength ?? rm.config.n_positions;
  check(
    Number.isInteger(maxLength) && maxLength >= 2 && maxLength <= rm.config.n_positions,
    `maxLength must be an integer in [2, n_positions=${rm.config.n_positions}] (got ${maxLength}).`,
  );
  const tok = tokenizePreferencePairs(pairs, tokenizer, { maxLength, addBos });
  let trainSet: TokenizedPair[];
  let evalSet: TokenizedPair[];
  let dropped = tok.dropped;
  let promptTruncated = tok.promptTruncated;
  if (options.evalPairs !== undefined) {
    trainSet = tok.pairs;
    const ev = tokenizePreferencePairs(options.evalPairs, tokenizer, { maxLength, addBos });
    evalSet = ev.pairs;
    dropped += ev.dropped;
    promptTruncated += ev.promptTruncated;
  } else {
    const n = tok.pairs.length;
    const numEval =
      evalFraction > 0 && n >= 2 ? Math.min(n - 1, Math.max(1, Math.round(evalFraction * n))) : 0;
    const perm = createRng(`rm-eval-split/${String(seed)}`).permutation(n);
    const isEval = new Set(perm.slice(0, numEval));
    trainSet = tok.pairs.filter((_, i) => !isEval.has(i));
    evalSet = tok.pairs.filter((_, i) => isEval.has(i));
  }
  const total = pairs.length + (options.evalPairs?.length ?? 0);
  check(
    trainSet.length > 0,
    `no training pair fits maxLength=${maxLength}: ${dropped} of ${total} pairs dropped (a response + EOS is ` +
      'longer); raise maxLength or shorten the responses.',
  );
  if (dropped > 0) {
    warn(
      `trainRewardModel: ${dropped} of ${total} preference pairs dropped: a response + EOS does not fit ` +
        `maxLength=${maxLength} (the result's \`dropped\`).`,
    );
  }
  const result = await runRewardModelTraining(rm, trainSet, evalSet, {
    ...options,
    padId: options.padId ?? tokenizer.padId,
  });
  return { ...result, numTrain: trainSet.length, numEval: evalSet.length, dropped, promptTruncated };
}
