/**
 * Reward-model training (docs/algorithms.md §2.2): Bradley–Terry loss on preference pairs (optional margin, optional LM
 * term on the chosen response), AdamW with warm-up + cosine decay and global-norm clipping, held-out
 * accuracy and mean margin, seeded data order, resumable checkpoints.
 */
import { runSupervisedLoop, type LoopOptions, type LoopSummary, type TextTokenizer } from '@relign/lm';
import { createRng } from '@relign/tensor';
import { REWARD_CHECKPOINT_KIND, type RewardRunFingerprint } from './checkpoint.js';
import type { PreferenceExample } from './dataset.js';
import { evaluateRewardModel } from './evaluate.js';
import { RewardModel } from './reward-model.js';
import { disposePairBatch, pairBatch, rewardModelLoss, type PairBatch } from './rm-loss.js';
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

/**
 * Options of {@link runRewardModelTraining}: the supervised loop's (`batchSize` counts pairs; give `maxSteps` or
 * `epochs`) plus the loss settings.
 */
export interface RewardTrainOptions extends Omit<LoopOptions, 'onStep' | 'maxSeconds'> {
  /** λ_lm of docs/algorithms.md §2.2: weight of the LM loss on the chosen response. Default 0. */
  lmCoef?: number;
  /** Loss margin for pairs without their own `margin`. Default 0. */
  margin?: number;
  /** Pad id. Default 0 (masks come from lengths). */
  padId?: number;
  /** Pairs per eval forward pass. Default `batchSize`. */
  evalBatchSize?: number;
  /** Seed of the data order. Default 0. */
  seed?: number | string;
  /** Called after every step. */
  onMetrics?: (metrics: RewardTrainMetrics) => void;
}

/** What the trainers return: the loop's counters (`tokensSeen` counts both sides of every pair) and the metrics. */
export interface RewardTrainResult extends LoopSummary {
  /** Mean train loss of the last `lossWindow` steps. */
  trainLoss: number;
  /** Mean train-batch accuracy of the last `lossWindow` steps. */
  trainAccuracy: number;
  /** Final held-out metrics (absent without an eval set). */
  eval?: { accuracy: number; meanMargin: number; loss: number; count: number };
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(`trainRewardModel: ${message}`);
}

/** What a reward-model evaluation records (and a checkpoint keeps). */
type RewardEval = { accuracy: number; meanMargin: number; loss: number; count: number };

/**
 * Trains `rm` in place on tokenized pairs and evaluates on `evalSet`, with the supervised loop of
 * `@relign/lm` (`runSupervisedLoop`).
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
  const { batchSize, seed = 0, lmCoef = 0, margin = 0, padId = 0 } = options;
  const evalBatchSize = options.evalBatchSize ?? batchSize;
  check(lmCoef >= 0 && Number.isFinite(lmCoef), `lmCoef must be a finite number >= 0 (got ${lmCoef}).`);
  check(Number.isFinite(margin), `margin must be a finite number (got ${margin}).`);
  check(
    train.length === 0 || options.maxSteps !== undefined || options.epochs !== undefined,
    'give maxSteps or epochs.',
  );
  train.forEach((p, i) => {
    check(
      p?.chosen?.ids instanceof Int32Array && p?.rejected?.ids instanceof Int32Array,
      `train[${i}] must be a TokenizedPair {chosen, rejected} (see tokenizePreferencePairs).`,
    );
  });
  const fingerprint: RewardRunFingerprint = {
    numTrain: train.length,
    numEval: evalSet.length,
    batchSize,
    seed: String(seed),
    lmCoef,
    margin,
  };
  const r = await runSupervisedLoop<PairBatch, RewardEval>(
    {
      name: 'trainRewardModel',
      kind: REWARD_CHECKPOINT_KIND,
      model: rm,
      loadModel: (dir) => RewardModel.fromPretrained(dir),
      restoreHint: 'resume with the same model configuration (and head bias setting)',
      size: train.length,
      orderSeed: `rm-train-order/${String(seed)}`,
      fingerprint: { ...fingerprint },
      batch: (indices) =>
        pairBatch(
          indices.map((i) => train[i]!),
          { padId, margin },
        ),
      disposeBatch: disposePairBatch,
      batchTokens: (b) => b.numTokens,
      loss: (b) => {
        const out = rewardModelLoss(rm, b, { lmCoef });
        return {
          loss: out.loss,
          stats: [out.btLoss, out.chosen, out.rejected, ...(out.lmLoss ? [out.lmLoss] : [])],
        };
      },
      stepMetrics: (_loss, [bt, c, r, lm]) => {
        let wins = 0;
        let sum = 0;
        for (let i = 0; i < c!.length; i++) {
          const d = c![i]! - r![i]!;
          wins += d > 0 ? 1 : d === 0 ? 0.5 : 0;
          sum += d;
        }
        return {
          btLoss: bt![0]!,
          accuracy: wins / c!.length,
          margin: sum / c!.length,
          ...(lm !== undefined ? { lmLoss: lm[0]! } : {}),
        };
      },
      windows: ['accuracy'],
      ...(evalSet.length > 0
        ? {
            evaluate: async () => {
              const e = await evaluateRewardModel(rm, evalSet, { batchSize: evalBatchSize, padId, margin });
              return { accuracy: e.accuracy, meanMargin: e.meanMargin, loss: e.loss, count: e.count };
            },
          }
        : {}),
    },
    {
      ...options,
      onStep: (s) => {
        const metrics: RewardTrainMetrics = {
          step: s.step,
          epoch: s.epoch,
          'train/loss': s.loss,
          'train/bt_loss': s.metrics.btLoss!,
          'train/accuracy': s.metrics.accuracy!,
          'train/margin': s.metrics.margin!,
          'train/lr': s.lr,
          'train/grad_norm': s.gradNorm,
          skipped: s.skipped,
        };
        if (s.metrics.lmLoss !== undefined) metrics['train/lm_loss'] = s.metrics.lmLoss;
        if (s.eval !== undefined) {
          metrics['eval/accuracy'] = s.eval.accuracy;
          metrics['eval/margin'] = s.eval.meanMargin;
          metrics['eval/loss'] = s.eval.loss;
        }
        options.onMetrics?.(metrics);
      },
    },
  );
  const result: RewardTrainResult = {
    trainLoss: r.recentMeans.loss!,
    trainAccuracy: r.recentMeans.accuracy!,
    steps: r.steps,
    totalSteps: r.totalSteps,
    skippedSteps: r.skippedSteps,
    tokensSeen: r.tokensSeen,
    seconds: r.seconds,
    interrupted: r.interrupted,
  };
  if (r.lastEval !== undefined) {
    const { accuracy, meanMargin, loss, count } = r.lastEval;
    result.eval = { accuracy, meanMargin, loss, count };
  }
  if (r.resumedFromStep !== undefined) result.resumedFromStep = r.resumedFromStep;
  return result;
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
  const maxLength = options.maxLength ?? rm.backbone.dims.maxPositions;
  check(
    Number.isInteger(maxLength) && maxLength >= 2 && maxLength <= rm.backbone.dims.maxPositions,
    `maxLength must be an integer in [2, n_positions=${rm.backbone.dims.maxPositions}] (got ${maxLength}).`,
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
