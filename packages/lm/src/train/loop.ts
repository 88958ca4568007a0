/**
 * The supervised training loop of relign, shared by SFT, pretraining, reward-model training and offline DPO.
 * A caller gives only its loss and its data (a {@link SupervisedTask}); the loop owns the rest: the seeded data
 * order, AdamW with warm-up + cosine decay, the update guard, the evaluation cadence, checkpoints and exact
 * resume, the time budget, and the per-step callback.
 *
 * Per step: the next `batchSize` examples of the epoch's seeded permutation (`DataOrder`) become a batch
 * (`task.batch`), `task.loss` runs under the gradient tape, the loss and the task's statistics are read back
 * in one asynchronous read, and `AdamW.guardedStep` applies the gradients at `warmupCosine(step)` with
 * global-norm clipping; a non-finite loss or gradient, or an update beyond the guard, skips the step (no
 * parameter changes). Same seed and backend → same run, and a run resumed from a checkpoint continues exactly
 * where the saved one stopped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, createRng, ensureBackend, warmupCosine } from '@relign/tensor';
import {
  restoreTrainingCheckpoint,
  saveTrainingCheckpoint,
  type CheckpointModel,
  type LoopFingerprint,
  type LoopState,
} from './checkpoint.js';
import { DataOrder } from './data-order.js';
import { checkLoopOptions, type LoopOptions } from './options.js';

export type { LoopOptions } from './options.js';

/** What a trainer gives the loop: its model, its data (by index) and its loss. */
export interface SupervisedTask<B, E extends object = Record<string, number>> {
  /** Names the trainer in error messages (`trainCausalLM`, `trainRewardModel`, ...). */
  name: string;
  /** The trainer kind written to checkpoints and required of the one resumed (`causal-lm`, ...). */
  kind: string;
  /** The model trained in place (its trainable variables) and checkpointed (`save`, `variables`). */
  model: CheckpointModel & { trainableVariables(): Map<string, tf.Variable> };
  /** Loads a checkpoint directory's model on resume (e.g. `CausalLM.fromPretrained`). */
  loadModel(dir: string): Promise<{ variables(): Map<string, tf.Variable>; dispose(): void }>;
  /** Said when a resumed checkpoint's parameter shape differs. */
  restoreHint?: string;
  /** Number of training examples. */
  size: number;
  /** Seed label of the data order: `createRng(orderSeed)` draws the epochs' permutations. */
  orderSeed: string;
  /** What a resumed run must share with its checkpoint (data sizes, batch size, seed, loss settings). */
  fingerprint: LoopFingerprint;
  /** Builds the batch of the examples `indices` (host work and tensors). */
  batch(indices: number[]): B;
  /** Frees a batch's tensors. */
  disposeBatch(batch: B): void;
  /** Real tokens of a batch (`tokensSeen`, tokens per second). Default 0. */
  batchTokens?(batch: B): number;
  /**
   * The loss of a batch, under the gradient tape. `stats` (float32 tensors of the same forward pass) are kept
   * past the tape and read back with the loss in the step's one read.
   */
  loss(batch: B): { loss: tf.Scalar; stats?: tf.Tensor[] };
  /** Named host metrics of a step, from the loss and the values of `stats` (in order). */
  stepMetrics?(loss: number, stats: Float32Array[]): Record<string, number>;
  /** Metrics of `stepMetrics` whose values of the last non-skipped steps are kept with the loss's (`recentMeans`). */
  windows?: readonly string[];
  /** Held-out evaluation; absent: the loop never evaluates. */
  evaluate?(): E | Promise<E>;
}

/** One step, as the loop hands it to `onStep`. */
export interface StepInfo<E> {
  /** Loop steps done (1-based after the first step). */
  step: number;
  /** Epoch of the batch just used (0-based). */
  epoch: number;
  /** `epoch + (examples of that epoch used) / size`. */
  epochProgress: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping (NaN/Inf on a skipped step). */
  gradNorm: number;
  /** True when the update was skipped (non-finite loss or gradient, or beyond the update guard). */
  skipped: boolean;
  /** Why it was skipped. */
  message?: string;
  /** Real tokens of the batch. */
  tokens: number;
  /** Seconds of forward, backward and update. */
  seconds: number;
  /** The task's `stepMetrics`. */
  metrics: Record<string, number>;
  /** The evaluation of this step, on steps that evaluated. */
  eval?: E;
}

/** The counters of a run, which every trainer returns. */
export interface LoopSummary {
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

/** What {@link runSupervisedLoop} returns. */
export interface LoopResult<E> extends LoopSummary {
  /** Mean of each window (`loss` and the task's `windows`) over the last `lossWindow` non-skipped steps; NaN if empty. */
  recentMeans: Record<string, number>;
  /** The last evaluation (this segment's or the checkpoint's) and its step. */
  lastEval?: E & { step: number };
  /** The last step of this segment. */
  lastStep?: StepInfo<E>;
}

function mean(xs: readonly number[]): number {
  return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** Runs the loop for `task` (see the module comment). The optimizer is created and disposed here. */
export async function runSupervisedLoop<B, E extends object>(
  task: SupervisedTask<B, E>,
  options: LoopOptions<E>,
): Promise<LoopResult<E>> {
  // The best available backend (wasm without native packages) unless the user chose one.
  await ensureBackend();
  const o = checkLoopOptions(task.name, task.size, options);
  const { batchSize, lr, warmupSteps, minLr, maxGradNorm, lossWindow } = o;
  let totalSteps = o.totalSteps;
  const trainable = task.model.trainableVariables();
  if (trainable.size === 0) {
    throw new Error(
      `${task.name}: the model has no trainable variables (was it created with trainable: false?).`,
    );
  }
  const varList = [...trainable.values()];
  const optimizer = new AdamW({
    lr,
    weightDecay: o.weightDecay,
    ...(options.beta1 !== undefined ? { beta1: options.beta1 } : {}),
    ...(options.beta2 !== undefined ? { beta2: options.beta2 } : {}),
  });
  try {
    let state: LoopState | undefined;
    if (options.resume) {
      state = await restoreTrainingCheckpoint(options.checkpointDir!, task.model, optimizer, {
        kind: task.kind,
        load: (dir) => task.loadModel(dir),
        ...(task.restoreHint !== undefined ? { hint: task.restoreHint } : {}),
      });
      if (state !== undefined) checkResume(task, options.checkpointDir!, state, totalSteps);
    }
    const resumedFromStep = state?.step;
    let step = state?.step ?? 0;
    // A time-budget run saved before it fixed its schedule has totalSteps 0.
    if (state !== undefined && state.totalSteps > 0) totalSteps = state.totalSteps;
    let skippedSteps = state?.skippedSteps ?? 0;
    let tokensSeen = state?.tokensSeen ?? 0;
    const windows = ['loss', ...(task.windows ?? [])];
    const recent: Record<string, number[]> = {};
    for (const w of windows) recent[w] = state?.recent[w]?.slice() ?? [];
    let lastEval = state?.lastEval as unknown as (E & { step: number }) | undefined;
    const order = new DataOrder(
      task.size,
      batchSize,
      state ?? { epoch: 0, index: 0, epochRng: createRng(task.orderSeed).state() },
    );
    const elapsedBefore = state?.elapsedSeconds ?? 0;
    const t0 = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - t0) / 1000;
    let lastSaved = step;
    let timedFrom: { step: number; time: number } | undefined;
    let evalSeconds = 0;
    let lastStep: StepInfo<E> | undefined;

    const save = async () => {
      if (options.checkpointDir === undefined || step === lastSaved) return;
      const current: LoopState = {
        step,
        totalSteps: totalSteps ?? 0,
        optimizerStep: optimizer.step,
        epoch: order.epoch,
        index: order.index,
        epochRng: order.epochRng,
        recent,
        skippedSteps,
        tokensSeen,
        elapsedSeconds: elapsed(),
        fingerprint: task.fingerprint,
        ...(lastEval ? { lastEval: lastEval as unknown as LoopState['lastEval'] } : {}),
      };
      await saveTrainingCheckpoint(options.checkpointDir, task.model, optimizer, current, {
        kind: task.kind,
        keep: options.keepCheckpoints ?? 1,
      });
      lastSaved = step;
    };
    const evaluate = task.evaluate;
    const runEval = async (): Promise<E> => {
      const e0 = performance.now();
      const r = await evaluate!();
      evalSeconds += (performance.now() - e0) / 1000;
      lastEval = { ...r, step };
      return r;
    };

    let interrupted = false;
    while (totalSteps === undefined || step < totalSteps) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const { indices, epoch } = order.next();
      const batch = task.batch(indices);
      const tokens = task.batchTokens?.(batch) ?? 0;
      // Before warm-up ends the rate does not depend on totalSteps (warmupCosine), so a time-budget run can
      // fix its total only after the warm-up.
      const rate = warmupCosine(step, {
        peak: lr,
        warmupSteps,
        totalSteps: totalSteps ?? Math.max(warmupSteps, step + 1),
        min: minLr,
      });
      const s0 = performance.now();
      let r: Awaited<ReturnType<typeof optimizer.guardedStep>>;
      let loss: number;
      let values: Float32Array[];
      try {
        let stats: tf.Tensor[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const out = task.loss(batch);
          // Kept past variableGrads' scope to be read with the loss; disposed below.
          stats = (out.stats ?? []).map((t) => tf.keep(t));
          return out.loss;
        }, varList);
        try {
          [loss, values] = await readStep(value, stats);
          const byName: Record<string, tf.Tensor> = {};
          for (const [name, v] of trainable) {
            const g = grads[v.name];
            if (g !== undefined) byName[name] = g;
          }
          // Guarded: a non-finite loss or gradient, or an exploding update, skips the step (no change).
          r = await optimizer.guardedStep(byName, trainable, { lr: rate, maxGradNorm, loss });
        } finally {
          value.dispose();
          for (const g of Object.values(grads)) g.dispose();
          for (const t of stats) t.dispose();
        }
      } finally {
        task.disposeBatch(batch);
      }
      const stepSeconds = (performance.now() - s0) / 1000;
      step += 1;
      tokensSeen += tokens;
      const metrics = task.stepMetrics?.(loss, values) ?? {};
      if (r.skipped) skippedSteps += 1;
      else {
        for (const w of windows) {
          recent[w]!.push(w === 'loss' ? loss : metrics[w]!);
          if (recent[w]!.length > lossWindow) recent[w]!.shift();
        }
      }
      const info: StepInfo<E> = {
        step,
        epoch,
        epochProgress: order.progress(),
        loss,
        lr: rate,
        gradNorm: r.gradNorm,
        skipped: r.skipped,
        ...(r.message !== undefined ? { message: r.message } : {}),
        tokens,
        seconds: stepSeconds,
        metrics,
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
          if (evaluate !== undefined && options.evalEvery !== undefined) {
            info.eval = await runEval();
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
      if (evaluate !== undefined && due && lastEval?.step !== step) info.eval = await runEval();
      lastStep = info;
      options.onStep?.(info);
      if (options.checkpointEvery !== undefined && step % options.checkpointEvery === 0) await save();
    }
    // A run stopped by `signal` reports its last evaluation (if any) rather than spend time on a new one.
    if (!interrupted && evaluate !== undefined && lastEval?.step !== step) await runEval();
    await save();
    const result: LoopResult<E> = {
      steps: step,
      totalSteps: totalSteps ?? step,
      skippedSteps,
      tokensSeen,
      seconds: elapsed(),
      interrupted,
      recentMeans: Object.fromEntries(windows.map((w) => [w, mean(recent[w]!)])),
    };
    if (resumedFromStep !== undefined) result.resumedFromStep = resumedFromStep;
    if (lastEval !== undefined) result.lastEval = lastEval;
    if (lastStep !== undefined) result.lastStep = lastStep;
    return result;
  } finally {
    optimizer.dispose();
  }
}

/** The loss and every statistic of a step, in one asynchronous read. */
async function readStep(value: tf.Scalar, stats: tf.Tensor[]): Promise<[number, Float32Array[]]> {
  const packed = tf.tidy(() => tf.concat([tf.reshape(value, [1]), ...stats.map((t) => tf.reshape(t, [-1]))]));
  let all: Float32Array;
  try {
    all = (await packed.data()) as Float32Array;
  } finally {
    packed.dispose();
  }
  const out: Float32Array[] = [];
  let at = 1;
  for (const t of stats) {
    out.push(all.subarray(at, at + t.size));
    at += t.size;
  }
  return [all[0]!, out];
}

/** Refuses to resume a checkpoint made with other data or settings (the run would not be the same). */
function checkResume<B, E extends object>(
  task: SupervisedTask<B, E>,
  dir: string,
  state: LoopState,
  totalSteps: number | undefined,
): void {
  for (const key of Object.keys(task.fingerprint)) {
    if (state.fingerprint[key] !== task.fingerprint[key]) {
      throw new Error(
        `${task.name}: the checkpoint in ${dir} was made with ${key} = ${state.fingerprint[key]}, ` +
          `this run has ${task.fingerprint[key]}. Resume with the same data and settings, or use another checkpointDir.`,
      );
    }
  }
  if (totalSteps !== undefined && state.totalSteps !== totalSteps) {
    throw new Error(
      `${task.name}: the checkpoint's schedule has ${state.totalSteps} total steps, this run ${totalSteps}; ` +
        'the learning-rate schedule would change. Resume with the same maxSteps/epochs.',
    );
  }
}
