/**
 * Offline DPO (docs/algorithms.md §3): trains a policy on a fixed preference data set against a frozen reference. The
 * reference sums `S_ref` are computed once and cached (see `reference-cache.ts`); each step is one policy
 * forward + backward over the chosen and rejected sequences of a minibatch, the DPO-family loss, and AdamW.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  CausalLM,
  disposeBatchTensors,
  runSupervisedLoop,
  type BatchTensors,
  type TokenizedExample,
} from '@relign/lm';
import type { TokenizedPair } from '@relign/reward-model';
import { ensureBackend } from '@relign/tensor';
import { dpoLoss, resolveDpoLossOptions, type DpoLossOptions } from '../loss.js';
import { dropIdenticalPairs } from './data.js';
import { evaluateDpo, type DpoEvalResult } from './evaluate.js';
import { ReferenceLogprobCache, type ReferenceSource } from './reference-cache.js';
import { examplesToTensors, responseLengths, responseLogprobSums } from './sequence-logprobs.js';

/** Named numbers (`train/loss`, `rewards/accuracy`, ...). */
export type OfflineDpoMetrics = Record<string, number>;

/** Options of {@link trainDpo}. Defaults follow the DPO paper and its code (docs/algorithms.md §3.1) where they exist. */
export interface OfflineDpoOptions {
  /** The policy, trained in place (its trainable variables). Usually starts as a copy of the reference. */
  policy: CausalLM;
  /** The frozen reference (the SFT model); never updated. */
  reference: CausalLM;
  /** Tokenized training pairs (`loadPreferencePairs`, or `tokenizePreferencePairs` of @relign/reward-model). */
  pairs: readonly TokenizedPair[];
  /** Held-out pairs, evaluated every `evalEvery` steps and at the end. */
  evalPairs?: readonly TokenizedPair[];
  /** Padding id of the batches (may equal EOS: masks come from lengths). */
  padId: number;
  /** The loss: `{ beta, lossType, labelSmoothing, ipoNormalization }` (defaults 0.1, 'sigmoid', 0, 'mean'). */
  loss?: DpoLossOptions;
  /** Pairs per optimizer step. Default 64 (docs/algorithms.md §3.1). */
  batchSize?: number;
  /** Peak learning rate (constant after the warm-up). Default 1e-6 (docs/algorithms.md §3.1, paper). */
  lr?: number;
  /** Linear warm-up steps. Default min(150, total steps) (docs/algorithms.md §3.1). */
  warmupSteps?: number;
  /** Passes over the pairs (default 1, docs/algorithms.md §3.1), unless `maxSteps` is given. */
  epochs?: number;
  /** Total optimizer steps (overrides `epochs`). */
  maxSteps?: number;
  /** Global gradient-norm clip. Default 10 (docs/algorithms.md §3.1, the authors' config). */
  maxGradNorm?: number;
  /** AdamW decoupled weight decay. Default 0 (the paper's RMSprop has none). */
  weightDecay?: number;
  /** AdamW β1, β2. Defaults 0.9, 0.999. */
  adamBeta1?: number;
  adamBeta2?: number;
  /** Seed of the data order. Default 0. */
  seed?: number | string;
  /** Reference log-prob cache (pass one with a `dir` to reuse values across runs). Default: a new in-memory one. */
  referenceCache?: ReferenceLogprobCache;
  /** Sequences per reference / evaluation forward pass. Default 32. */
  inferenceBatchSize?: number;
  /** Evaluate on `evalPairs` every this many steps (and always at the end). */
  evalEvery?: number;
  /** Called after every step with its metrics. */
  onMetrics?: (metrics: OfflineDpoMetrics, step: number) => void;
  /** Something the user should know (skipped identical pairs, skipped steps). Default `console.warn`. */
  onWarning?: (message: string) => void;
  /** Stops the run after the current step. */
  signal?: AbortSignal;
}

/** What {@link trainDpo} returns. */
export interface OfflineDpoResult {
  /** Loop steps run (skipped updates included). */
  steps: number;
  /** Steps whose update was skipped (non-finite loss or gradient, or beyond the update guard; no parameter changed). */
  skippedSteps: number;
  /** Training pairs used. */
  pairs: number;
  /** Training pairs left out because chosen and rejected were identical. */
  identicalPairs: number;
  /** Where the training pairs' reference sums came from, and the seconds it took. */
  reference: { source: ReferenceSource; seconds: number; key: string };
  /** The same for the evaluation pairs. */
  evalReference?: { source: ReferenceSource; seconds: number; key: string };
  /** Metrics of the last step. */
  lastMetrics?: OfflineDpoMetrics;
  /** The final evaluation on `evalPairs`. */
  eval?: DpoEvalResult;
  /** True when `signal` stopped the run early. */
  interrupted: boolean;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
}

const FN = 'trainDpo';

/** A minibatch: the chosen then the rejected sequences, and their reference sums and response lengths. */
interface DpoBatch {
  tensors: BatchTensors;
  refChosen: tf.Tensor1D;
  refRejected: tf.Tensor1D;
  chosenLengths: Int32Array;
  rejectedLengths: Int32Array;
}

function positiveInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${FN}: options.${name} must be an integer >= 1, got ${String(value)}.`);
  }
  return value;
}

function finiteNumber(value: unknown, name: string, ok: (v: number) => boolean, want: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new Error(`${FN}: options.${name} must be a finite number ${want}, got ${String(value)}.`);
  }
  return value;
}

/** Checks that every sequence fits the model (vocabulary and positions); names the first offending pair. */
function checkFits(pairs: readonly TokenizedPair[], model: CausalLM, field: string, which: string): void {
  const { vocabSize: V, maxPositions: P } = model.dims;
  pairs.forEach((p, i) => {
    for (const side of ['chosen', 'rejected'] as const) {
      const ex: TokenizedExample | undefined = p?.[side];
      if (!ex || !(ex.ids instanceof Int32Array) || ex.ids.length !== ex.length || ex.length < 2) {
        throw new Error(
          `${FN}: options.${field}[${i}].${side} must be a tokenized example {ids: Int32Array, promptLength, length >= 2}.`,
        );
      }
      if (ex.length > P) {
        throw new Error(
          `${FN}: options.${field}[${i}].${side} has ${ex.length} tokens; the ${which} takes at most n_positions = ${P} (tokenize with maxLength: ${P}).`,
        );
      }
      for (const id of ex.ids) {
        if (id < 0 || id >= V) {
          throw new Error(
            `${FN}: options.${field}[${i}].${side} holds token id ${id}, outside the ${which}'s vocabulary [0, ${V}); use the model's tokenizer.`,
          );
        }
      }
    }
  });
}

/**
 * Trains `policy` with offline DPO (or cDPO, rDPO, IPO) on `pairs` against `reference` (docs/algorithms.md §3):
 *
 *     S_ref of every pair ← cache (computed once: one reference pass over the data set)
 *     for each minibatch of `batchSize` pairs (a seeded shuffle per epoch):
 *       S_θ(y_w), S_θ(y_l) ← one policy forward over the 2·batchSize sequences
 *       loss = dpoLoss(S_θ, S_ref; β, lossType, ε)  → AdamW step (warm-up, grad-norm clip, skip if non-finite)
 *
 * Pairs whose chosen and rejected sequences are identical are left out (counted, with a warning). At the first
 * step, with the policy equal to the reference, the DPO loss is ln 2. Deterministic for a seed on a backend.
 *
 * Metrics per step (TRL's names): `train/loss`, `train/lr`, `train/grad_norm`, `train/skipped`,
 * `rewards/chosen`, `rewards/rejected`, `rewards/accuracy`, `rewards/margin`, `logps/chosen`,
 * `logps/rejected`, `train/epoch`; with `evalPairs`, `eval/loss`, `eval/rewards/accuracy`,
 * `eval/rewards/margin` on evaluation steps.
 *
 * @throws Error naming the option that is invalid (and the fix), before any work is done.
 */
export async function trainDpo(options: OfflineDpoOptions): Promise<OfflineDpoResult> {
  const t0 = performance.now();
  // The best available backend (wasm without native packages) unless the user chose one.
  await ensureBackend();
  if (options === null || typeof options !== 'object') throw new Error(`${FN}: options must be an object.`);
  const { policy, reference, padId } = options;
  if (!policy || typeof policy.forward !== 'function')
    throw new Error(`${FN}: options.policy must be a CausalLM (@relign/lm).`);
  if (!reference || typeof reference.forward !== 'function')
    throw new Error(`${FN}: options.reference must be a CausalLM (the frozen SFT model).`);
  if (policy === reference) {
    throw new Error(
      `${FN}: options.policy and options.reference are the same model; pass reference = policy.clone({ trainable: false }).`,
    );
  }
  const lossOptions = resolveDpoLossOptions(options.loss, FN);
  if (!Number.isInteger(padId) || padId < 0)
    throw new Error(`${FN}: options.padId must be a token id >= 0, got ${String(padId)}.`);
  if (!Array.isArray(options.pairs))
    throw new Error(`${FN}: options.pairs must be an array of tokenized pairs {chosen, rejected}.`);
  const batchSize = positiveInt(options.batchSize ?? 64, 'batchSize');
  const lr = finiteNumber(options.lr ?? 1e-6, 'lr', (v) => v > 0, '> 0');
  const maxGradNorm = finiteNumber(options.maxGradNorm ?? 10, 'maxGradNorm', (v) => v > 0, '> 0');
  const inferenceBatchSize = positiveInt(options.inferenceBatchSize ?? 32, 'inferenceBatchSize');
  const evalEvery = options.evalEvery === undefined ? undefined : positiveInt(options.evalEvery, 'evalEvery');
  const seed = options.seed ?? 0;
  const warn = options.onWarning ?? ((m: string) => console.warn(m));

  checkFits(options.pairs, policy, 'pairs', 'policy');
  checkFits(options.pairs, reference, 'pairs', 'reference');
  const evalPairs = options.evalPairs && options.evalPairs.length > 0 ? options.evalPairs : undefined;
  if (evalPairs) {
    checkFits(evalPairs, policy, 'evalPairs', 'policy');
    checkFits(evalPairs, reference, 'evalPairs', 'reference');
  }
  const { pairs, identical } = dropIdenticalPairs(options.pairs);
  if (identical.length > 0) {
    warn(
      `${FN}: skipped ${identical.length} training pair(s) whose chosen and rejected sequences are identical ` +
        `(indices ${identical.slice(0, 10).join(', ')}${identical.length > 10 ? ', ...' : ''}); they carry no preference.`,
    );
  }
  if (pairs.length === 0)
    throw new Error(
      `${FN}: no training pairs left (${options.pairs.length} given, ${identical.length} identical).`,
    );

  const stepsPerEpoch = Math.ceil(pairs.length / batchSize);
  let totalSteps: number;
  if (options.maxSteps !== undefined) totalSteps = positiveInt(options.maxSteps, 'maxSteps');
  else {
    const epochs = finiteNumber(options.epochs ?? 1, 'epochs', (v) => v > 0, '> 0');
    totalSteps = Math.max(1, Math.ceil(epochs * stepsPerEpoch));
  }
  const warmupSteps = options.warmupSteps ?? Math.min(150, totalSteps);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new Error(
      `${FN}: options.warmupSteps must be an integer in [0, total steps = ${totalSteps}], got ${String(warmupSteps)}.`,
    );
  }
  const trainable = policy.trainableVariables();
  if (trainable.size === 0)
    throw new Error(
      `${FN}: options.policy has no trainable variables (was it created with trainable: false?).`,
    );

  // Reference sums: once per (reference, data) — docs/algorithms.md §3.1's S_ref are data, never differentiated.
  const cache = options.referenceCache ?? new ReferenceLogprobCache();
  const refLookup = await cache.get(reference, pairs, {
    padId,
    batchSize: inferenceBatchSize,
    slot: 'train',
  });
  const ref = refLookup.logprobs;
  const evalLookup = evalPairs
    ? await cache.get(reference, evalPairs, { padId, batchSize: inferenceBatchSize, slot: 'eval' })
    : undefined;

  let lastMetrics: OfflineDpoMetrics | undefined;
  const r = await runSupervisedLoop<DpoBatch, DpoEvalResult>(
    {
      name: FN,
      kind: 'dpo',
      model: policy,
      loadModel: (dir) => CausalLM.fromPretrained(dir),
      size: pairs.length,
      orderSeed: `dpo-order/${String(seed)}`,
      fingerprint: { numTrain: pairs.length, batchSize, seed: String(seed) },
      batch: (idx) => {
        const chosenEx = idx.map((k) => pairs[k]!.chosen);
        const rejectedEx = idx.map((k) => pairs[k]!.rejected);
        return {
          tensors: examplesToTensors([...chosenEx, ...rejectedEx], padId),
          refChosen: tf.tensor1d(Float32Array.from(idx, (k) => ref.chosen[k]!)),
          refRejected: tf.tensor1d(Float32Array.from(idx, (k) => ref.rejected[k]!)),
          chosenLengths: responseLengths(chosenEx),
          rejectedLengths: responseLengths(rejectedEx),
        };
      },
      disposeBatch: (b) => {
        disposeBatchTensors(b.tensors);
        tf.dispose([b.refChosen, b.refRejected]);
      },
      loss: (b) => {
        // One forward over chosen then rejected rows: S_θ(y_w) = sums[:b], S_θ(y_l) = sums[b:].
        const sums = responseLogprobSums(policy, b.tensors);
        const [policyChosen, policyRejected] = tf.split(sums, 2) as [tf.Tensor1D, tf.Tensor1D];
        const { refChosen, refRejected, chosenLengths, rejectedLengths } = b;
        const out = dpoLoss(
          { policyChosen, policyRejected, refChosen, refRejected, chosenLengths, rejectedLengths },
          lossOptions,
        );
        const stats = tf.stack([
          out.accuracy,
          out.margin,
          tf.mean(out.chosenReward),
          tf.mean(out.rejectedReward),
          tf.mean(policyChosen),
          tf.mean(policyRejected),
        ]);
        return { loss: out.loss, stats: [stats] };
      },
      stepMetrics: (_loss, [st]) => ({
        'rewards/accuracy': st![0]!,
        'rewards/margin': st![1]!,
        'rewards/chosen': st![2]!,
        'rewards/rejected': st![3]!,
        'logps/chosen': st![4]!,
        'logps/rejected': st![5]!,
      }),
      ...(evalPairs
        ? {
            evaluate: () =>
              evaluateDpo(policy, evalPairs, evalLookup!.logprobs, {
                padId,
                batchSize: inferenceBatchSize,
                loss: lossOptions,
              }),
          }
        : {}),
    },
    {
      batchSize,
      lr,
      // Constant after the warm-up (docs/algorithms.md §3.1).
      minLr: lr,
      warmupSteps,
      maxSteps: totalSteps,
      maxGradNorm,
      weightDecay: options.weightDecay ?? 0,
      beta1: options.adamBeta1 ?? 0.9,
      beta2: options.adamBeta2 ?? 0.999,
      ...(evalEvery !== undefined ? { evalEvery } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      onStep: (s) => {
        if (s.skipped) warn(`${FN}: step ${s.step}: ${s.message}`);
        lastMetrics = {
          'train/step': s.step,
          'train/epoch': s.epochProgress,
          'train/loss': s.loss,
          'train/lr': s.lr,
          'train/grad_norm': s.gradNorm,
          'train/skipped': s.skipped ? 1 : 0,
          ...s.metrics,
          'data/identical_pairs': identical.length,
        };
        if (s.eval !== undefined) {
          Object.assign(lastMetrics, {
            'eval/loss': s.eval.loss,
            'eval/rewards/accuracy': s.eval.accuracy,
            'eval/rewards/margin': s.eval.margin,
          });
        }
        options.onMetrics?.(lastMetrics, s.step);
      },
    },
  );
  let lastEval: DpoEvalResult | undefined;
  if (r.lastEval !== undefined) {
    const { step: _step, ...e } = r.lastEval;
    lastEval = e;
  }
  const out: OfflineDpoResult = {
    steps: r.steps,
    skippedSteps: r.skippedSteps,
    pairs: pairs.length,
    identicalPairs: identical.length,
    reference: { source: refLookup.source, seconds: refLookup.seconds, key: ref.key },
    interrupted: r.interrupted,
    seconds: (performance.now() - t0) / 1000,
  };
  if (evalLookup)
    out.evalReference = {
      source: evalLookup.source,
      seconds: evalLookup.seconds,
      key: evalLookup.logprobs.key,
    };
  if (lastMetrics) out.lastMetrics = lastMetrics;
  if (lastEval) out.eval = lastEval;
  return out;
}
