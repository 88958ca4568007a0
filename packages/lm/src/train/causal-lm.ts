/**
 * Causal-LM training on tokenized examples (SFT and pretraining): the supervised loop with the token-mean
 * −log p of the target tokens as its loss and the held-out loss and perplexity as its evaluation.
 */
import { collate, type CollatedBatch } from '../data/collate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import { CausalLM } from '../model/causal-lm.js';
import { evaluateLoss } from '../sft/evaluate.js';
import { batchToTensors, causalLmLoss, disposeBatchTensors, type BatchTensors } from '../sft/loss.js';
import { runSupervisedLoop, type LoopOptions, type LoopSummary } from './loop.js';

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
export interface TrainLoopOptions extends Omit<LoopOptions<CausalEval>, 'onStep'> {
  /** Id written into padded positions (may equal EOS). */
  padId: number;
  /** Batch size of evaluation. Default `batchSize`. */
  evalBatchSize?: number;
  /** Seed of the data order. Default 0. */
  seed?: number | string;
  /** Called after every step. */
  onMetrics?: (metrics: TrainMetrics) => void;
}

/** What {@link trainCausalLM} returns: the loop's counters and the losses. */
export interface TrainResult extends LoopSummary {
  /** Mean train loss of the last `lossWindow` steps (NaN if none). */
  trainLoss: number;
  /** Final held-out loss (NaN without an eval set). */
  evalLoss: number;
  /** `exp(evalLoss)`. */
  evalPerplexity: number;
}

/** What a causal-LM evaluation records. */
type CausalEval = { loss: number; perplexity: number };

type CausalBatch = { host: CollatedBatch; tensors: BatchTensors };

/**
 * Trains `model` in place on `train` and evaluates on `evalSet`.
 *
 * Per step: the next `batchSize` examples of the epoch's seeded permutation are right-padded
 * (`collate`), the loss is the token mean of −log p over their target tokens (`causalLmLoss`), and AdamW
 * applies the gradients at `warmupCosine(step)` with global-norm clipping; a non-finite loss or gradient,
 * or an update beyond the guard of `AdamW.guardedStep`, skips the step (reported as `skipped`).
 * Deterministic for a seed on a given backend, and a run resumed from a checkpoint continues exactly where
 * the saved one stopped (see `runSupervisedLoop`).
 */
export async function trainCausalLM(
  model: CausalLM,
  train: readonly TokenizedExample[],
  evalSet: readonly TokenizedExample[],
  options: TrainLoopOptions,
): Promise<TrainResult> {
  const { padId, seed = 0 } = options;
  const evalBatchSize = options.evalBatchSize ?? options.batchSize;
  const r = await runSupervisedLoop<CausalBatch, CausalEval>(
    {
      name: 'trainCausalLM',
      kind: 'causal-lm',
      model,
      loadModel: (dir) => CausalLM.fromPretrained(dir),
      size: train.length,
      orderSeed: `train-order/${String(seed)}`,
      fingerprint: {
        numTrain: train.length,
        numEval: evalSet.length,
        batchSize: options.batchSize,
        seed: String(seed),
      },
      batch: (indices) => {
        const examples = indices.map((i) => train[i]!);
        const longest = examples.reduce((m, e) => Math.max(m, e.length), 0);
        const host = collate(examples, { padId, padTo: Math.max(longest, 2) });
        return { host, tensors: batchToTensors(host) };
      },
      disposeBatch: (b) => disposeBatchTensors(b.tensors),
      batchTokens: (b) => b.host.numTokens,
      loss: (b) => ({ loss: causalLmLoss(model, b.tensors) }),
      ...(evalSet.length > 0
        ? {
            evaluate: async () => {
              const e = await evaluateLoss(model, evalSet, { batchSize: evalBatchSize, padId });
              return { loss: e.loss, perplexity: e.perplexity };
            },
          }
        : {}),
    },
    {
      ...options,
      onStep: (s) => {
        const m: TrainMetrics = {
          step: s.step,
          epoch: s.epoch,
          'train/loss': s.loss,
          'train/lr': s.lr,
          'train/grad_norm': s.gradNorm,
          'train/tokens_per_s': s.tokens / Math.max(s.seconds, 1e-9),
          skipped: s.skipped,
        };
        if (s.eval !== undefined) {
          m['eval/loss'] = s.eval.loss;
          m['eval/perplexity'] = s.eval.perplexity;
        }
        options.onMetrics?.(m);
      },
    },
  );
  const result: TrainResult = {
    trainLoss: r.recentMeans.loss!,
    evalLoss: r.lastEval?.loss ?? Number.NaN,
    evalPerplexity: r.lastEval?.perplexity ?? Number.NaN,
    steps: r.steps,
    totalSteps: r.totalSteps,
    skippedSteps: r.skippedSteps,
    tokensSeen: r.tokensSeen,
    seconds: r.seconds,
    interrupted: r.interrupted,
  };
  if (r.resumedFromStep !== undefined) result.resumedFromStep = r.resumedFromStep;
  return result;
}
