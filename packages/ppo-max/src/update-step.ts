/**
 * One optimizer step of PPO-max on a minibatch (docs/algorithms.md §4.6): gradients of the policy and critic
 * losses accumulated over micro-batches, then one guarded AdamW step per model (`AdamW.prepareStep`) with
 * global-norm clipping, both or neither.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Metrics } from '@relign/core';
import {
  batchToTensors,
  collate,
  disposeBatchTensors,
  type CausalLM,
  type TokenizedExample,
} from '@relign/lm';
import type { RolloutBatch } from '@relign/rollout';
import type { AdamW, GuardedStepOptions, GuardedStepResult, PendingStep } from '@relign/tensor';
import type { PpoMaxConfig } from './config.js';
import type { Critic } from './critic.js';
import { chunks } from './rows.js';
import { mossLearningRate } from './schedule.js';
import {
  criticTerms,
  disposeMicro,
  microBatch,
  policyTerms,
  ScalarLog,
  StatSums,
  type MinibatchHost,
  type PtxInput,
} from './terms.js';

/** What a step trains: the two models, their optimizers, the config. */
export interface Trainees {
  policy: CausalLM;
  critic: Critic;
  policyOptimizer: AdamW;
  criticOptimizer: AdamW;
  config: PpoMaxConfig;
  /** Padding id for batching PPO-ptx examples. */
  ptxPadId: number;
}

/** One minibatch: its rows as a batch, their host data, their token count, the PPO-ptx examples drawn for it. */
export interface Minibatch {
  mb: RolloutBatch;
  host: MinibatchHost;
  n: number;
  /** One PPO-ptx example per row (empty without PPO-ptx). */
  ptx: readonly TokenizedExample[];
}

export interface StepOutcome {
  /** The minibatch's metrics, or undefined when the step was skipped. */
  metrics?: Metrics;
  /** The learning rates of this step (0 for a model not trained). */
  policyLr: number;
  criticLr: number;
}

/**
 * Trains on one minibatch: the policy only when `trainPolicy` (not during the critic's warm-up, §2.8). A
 * non-finite loss or gradient, or an update beyond the guard's bounds (AdamW.guardedStep), in either model
 * skips both steps.
 */
export async function trainMinibatch(
  t: Trainees,
  data: Minibatch,
  trainPolicy: boolean,
): Promise<StepOutcome> {
  const { config } = t;
  const policyVars = t.policy.trainableVariables();
  const criticVars = t.critic.trainableVariables();
  const policyGrads = new GradSum();
  const criticGrads = new GradSum();
  const log = new ScalarLog();
  try {
    await accumulate(t, data, trainPolicy, { policyGrads, criticGrads, log }, { policyVars, criticVars });
    // Fold the micro-batches' numbers in order: the losses (for the guard) and the statistics.
    const losses = { policy: 0, critic: 0 };
    const stats = new StatSums();
    for (const [k, v] of await log.read()) {
      if (k === POLICY_LOSS) losses.policy += v;
      else if (k === CRITIC_LOSS) losses.critic += v;
      else stats.add(k, v);
    }
    const policyLr = trainPolicy
      ? mossLearningRate(config.lr, t.policyOptimizer.step, config.lrWarmupSteps)
      : 0;
    const criticLr = mossLearningRate(config.criticLr, t.criticOptimizer.step, config.lrWarmupSteps);
    const clip = { maxGradNorm: config.maxGradNorm };
    const steps: Parameters<typeof stepTogether>[0] = [];
    if (trainPolicy) {
      const options = { ...clip, lr: policyLr, loss: losses.policy };
      steps.push([t.policyOptimizer, policyGrads.byName(policyVars), policyVars, options]);
    }
    const options = { ...clip, lr: criticLr, loss: losses.critic };
    steps.push([t.criticOptimizer, criticGrads.byName(criticVars), criticVars, options]);
    const done = await stepTogether(steps);
    if (!done) return { policyLr, criticLr };
    const metrics: Metrics = {};
    if (trainPolicy) metrics['train/grad_norm'] = done[0]!.gradNorm;
    metrics['train/critic_grad_norm'] = done[done.length - 1]!.gradNorm;
    return { metrics: stats.result(data.n, metrics), policyLr, criticLr };
  } finally {
    log.dispose();
    policyGrads.dispose();
    criticGrads.dispose();
  }
}

const POLICY_LOSS = '#policy-loss';
const CRITIC_LOSS = '#critic-loss';

/** Gradients of each micro-batch's losses into the sums; the losses and statistics into `log` (unread). */
async function accumulate(
  t: Trainees,
  { mb, host, n, ptx: examples }: Minibatch,
  trainPolicy: boolean,
  into: { policyGrads: GradSum; criticGrads: GradSum; log: ScalarLog },
  vars: { policyVars: Map<string, tf.Variable>; criticVars: Map<string, tf.Variable> },
): Promise<void> {
  let ptxTargets = 0;
  for (const ex of examples) ptxTargets += Math.max(0, ex.length - Math.max(ex.promptLength, 1));
  const rows = Array.from({ length: mb.batchSize }, (_, i) => i);
  for (const idx of chunks(rows, t.config.microBatchSize)) {
    const m = microBatch(mb, idx, host);
    const ptx: PtxInput | undefined =
      ptxTargets > 0
        ? {
            tensors: ptxTensors(
              idx.map((i) => examples[i]!),
              t.ptxPadId,
            ),
            targets: ptxTargets,
          }
        : undefined;
    try {
      if (trainPolicy) {
        const g = gradsOf(() => policyTerms(t.policy, t.config, m, n, ptx), vars.policyVars, into.log);
        into.log.add(POLICY_LOSS, g.value);
        into.policyGrads.add(g.grads);
      }
      const g = gradsOf(() => criticTerms(t.critic, t.config, m, n), vars.criticVars, into.log);
      into.log.add(CRITIC_LOSS, g.value);
      into.criticGrads.add(g.grads);
    } finally {
      disposeMicro(m);
      if (ptx) disposeBatchTensors(ptx.tensors);
    }
  }
}

/** `tf.variableGrads` of a loss; its statistics go to `log` (the caller owns the value and gradients). */
function gradsOf(
  terms: () => { loss: tf.Scalar; stats: Record<string, tf.Scalar> },
  vars: Map<string, tf.Variable>,
  log: ScalarLog,
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  let stats: Record<string, tf.Scalar> = {};
  const g = tf.variableGrads(() => {
    const r = terms();
    stats = r.stats;
    return r.loss;
  }, [...vars.values()]);
  log.addAll(stats);
  return g;
}

/** PPO-ptx examples as one padded model input (at least 2 wide: the NLL needs a target). */
function ptxTensors(examples: TokenizedExample[], padId: number): ReturnType<typeof batchToTensors> {
  const padTo = Math.max(2, ...examples.map((ex) => ex.length));
  return batchToTensors(collate(examples, { padId, padTo }));
}

/**
 * Guarded steps of several optimizers, all or none: each is prepared (checked on the device), and committed
 * only when none was skipped. Returns the committed results in order, or undefined when skipped.
 */
async function stepTogether(
  steps: [AdamW, Record<string, tf.Tensor>, Map<string, tf.Variable>, GuardedStepOptions][],
): Promise<GuardedStepResult[] | undefined> {
  const pending: PendingStep[] = [];
  try {
    for (const [optimizer, grads, vars, options] of steps)
      pending.push(await optimizer.prepareStep(grads, vars, options));
  } catch (e) {
    pending.forEach((p) => p.discard());
    throw e;
  }
  if (pending.some((p) => p.skipped)) {
    pending.forEach((p) => p.discard());
    return undefined;
  }
  return pending.map((p) => p.commit());
}

/** Sums gradients of successive micro-batches, keyed by tfjs variable name. */
class GradSum {
  private readonly sums = new Map<string, tf.Tensor>();

  add(grads: tf.NamedTensorMap): void {
    for (const [k, g] of Object.entries(grads)) {
      const prev = this.sums.get(k);
      if (prev) {
        this.sums.set(k, tf.add(prev, g));
        prev.dispose();
        g.dispose();
      } else {
        this.sums.set(k, g);
      }
    }
  }

  /** The sums keyed by parameter name (for AdamW). */
  byName(trainable: Map<string, tf.Variable>): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, v] of trainable) {
      const g = this.sums.get(v.name);
      if (g !== undefined) out[name] = g;
    }
    return out;
  }

  dispose(): void {
    for (const g of this.sums.values()) g.dispose();
    this.sums.clear();
  }
}
