/**
 * The loss terms of one micro-batch (docs/algorithms.md §2.7, §4.6) and their statistics: the policy's clipped
 * surrogate with the optional entropy bonus and PPO-ptx NLL, and the critic's clipped value loss. Both are
 * token means over the whole minibatch's `n` tokens, so micro-batch losses and gradients sum to the
 * minibatch's exactly.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Metrics } from '@relign/core';
import { batchToTensors, causalLmNllSum, type CausalLM } from '@relign/lm';
import {
  computeLogprobs,
  computeLogprobsAndEntropy,
  responseMaskArray,
  type RolloutBatch,
} from '@relign/rollout';
import type { PpoMaxConfig } from './config.js';
import type { Critic } from './critic.js';
import { ppoPolicyLoss } from './policy-loss.js';
import { selectRows, selectTokens } from './rows.js';
import { valueLoss } from './value-loss.js';

/** Data of one micro-batch: its rows as a batch and its per-token data tensors (free with {@link disposeMicro}). */
export interface Micro {
  batch: RolloutBatch;
  mask: tf.Tensor2D;
  oldLogprobs: tf.Tensor2D;
  advantages: tf.Tensor2D;
  oldValues: tf.Tensor2D;
  returns: tf.Tensor2D;
}

/** Per-token host data of a minibatch, `[rows, width]` of the minibatch. */
export interface MinibatchHost {
  adv: Float32Array;
  oldValues: Float32Array;
  returns: Float32Array;
}

/** PPO-ptx examples of a micro-batch as model input, and the minibatch's count of NLL targets. */
export interface PtxInput {
  tensors: ReturnType<typeof batchToTensors>;
  targets: number;
}

/** The micro-batch of rows `idx` of the minibatch `mb`, whose host arrays are `host`. */
export function microBatch(mb: RolloutBatch, idx: readonly number[], host: MinibatchHost): Micro {
  const batch = selectRows(mb, idx);
  const shape: [number, number] = [batch.batchSize, batch.responseWidth];
  const pick = (a: Float32Array) =>
    tf.tensor2d(selectTokens(a, mb.responseWidth, idx, batch.responseWidth), shape);
  return {
    batch,
    mask: tf.tensor2d(responseMaskArray(batch), shape),
    oldLogprobs: tf.tensor2d(batch.logprobs, shape),
    advantages: pick(host.adv),
    oldValues: pick(host.oldValues),
    returns: pick(host.returns),
  };
}

export function disposeMicro(m: Micro): void {
  tf.dispose([m.mask, m.oldLogprobs, m.advantages, m.oldValues, m.returns]);
}

const BIG = 3.4e38;

/**
 * Policy loss of a micro-batch (token mean over the minibatch's `n` tokens) and its statistics, inside the
 * caller's `tf.variableGrads` or `tf.tidy`. Statistics are `tf.keep`-ed: the caller disposes them.
 */
export function policyTerms(policy: CausalLM, config: PpoMaxConfig, m: Micro, n: number, ptx?: PtxInput) {
  let logprobs: tf.Tensor2D;
  let entropy: tf.Tensor2D | undefined;
  if (config.entropyCoef > 0) ({ logprobs, entropy } = computeLogprobsAndEntropy(policy, m.batch));
  else logprobs = computeLogprobs(policy, m.batch);
  const r = ppoPolicyLoss(
    { logprobs, oldLogprobs: m.oldLogprobs, advantages: m.advantages, mask: m.mask },
    { clipRange: config.policyClip ? config.clipRange : Infinity, tokenCount: n },
  );
  const cond = tf.cast(m.mask, 'bool');
  const ratio = tf.exp(tf.where(cond, tf.sub(logprobs, m.oldLogprobs), tf.zerosLike(logprobs)));
  const stats: Record<string, tf.Scalar> = {
    'loss/policy': r.loss,
    'policy/clipfrac': r.clipFrac,
    'policy/approxkl': r.approxKl,
    'policy/ratio_sum': tf.sum(tf.where(cond, ratio, tf.zerosLike(ratio))) as tf.Scalar,
    'policy/ratio_min': tf.min(tf.where(cond, ratio, tf.fill(ratio.shape, BIG))) as tf.Scalar,
    'policy/ratio_max': tf.max(tf.where(cond, ratio, tf.fill(ratio.shape, -BIG))) as tf.Scalar,
  };
  let loss: tf.Scalar = r.loss;
  if (entropy) {
    const h = tf.div(tf.sum(entropy), n) as tf.Scalar; // 0 at padding already
    stats['policy/entropy'] = h;
    loss = tf.sub(loss, tf.mul(h, config.entropyCoef));
  }
  if (ptx && ptx.targets > 0) {
    const nll = tf.div(causalLmNllSum(policy, ptx.tensors), ptx.targets) as tf.Scalar;
    stats['loss/ptx'] = nll;
    loss = tf.add(loss, tf.mul(nll, config.ptxCoef));
  }
  for (const s of Object.values(stats)) tf.keep(s);
  return { loss, stats };
}

/** Value loss of a micro-batch (token mean over `n`) and its statistics; see {@link policyTerms}. */
export function criticTerms(critic: Critic, config: PpoMaxConfig, m: Micro, n: number) {
  const values = critic.values(m.batch);
  const r = valueLoss(
    { values, oldValues: m.oldValues, returns: m.returns, mask: m.mask },
    { clipRange: config.valueClip ? config.valueClipRange : Infinity, tokenCount: n },
  );
  const stats: Record<string, tf.Scalar> = {
    'loss/value': r.loss,
    'value/clipfrac': r.clipFrac,
    'value/error': tf.div(tf.sum(tf.mul(tf.square(tf.sub(values, m.returns)), m.mask)), n) as tf.Scalar,
  };
  for (const s of Object.values(stats)) tf.keep(s);
  return { loss: tf.mul(r.loss, config.vfCoef) as tf.Scalar, stats };
}

/**
 * Named device scalars collected over a minibatch's micro-batches, read back in one asynchronous read: the
 * host then folds them in the order they were added (so sums round as they would one by one).
 */
export class ScalarLog {
  private readonly entries: [string, tf.Scalar][] = [];

  add(key: string, value: tf.Scalar): void {
    this.entries.push([key, value]);
  }

  addAll(stats: Record<string, tf.Scalar>): void {
    for (const [k, s] of Object.entries(stats)) this.add(k, s);
  }

  /** The values in order of addition; frees the scalars. */
  async read(): Promise<[string, number][]> {
    if (this.entries.length === 0) return [];
    const all = tf.stack(this.entries.map(([, s]) => s));
    try {
      const values = await all.data();
      return this.entries.map(([k], i) => [k, values[i]!]);
    } finally {
      all.dispose();
      this.dispose();
    }
  }

  dispose(): void {
    tf.dispose(this.entries.map(([, s]) => s));
    this.entries.length = 0;
  }
}

/**
 * Statistics summed over micro-batches: keys ending in `_min` / `_max` keep the minimum / maximum, others
 * the sum (token means over the minibatch's `n` tokens add up); `policy/ratio_sum` becomes
 * `policy/ratio_mean` (÷ `n`).
 */
export class StatSums {
  private readonly sums = new Map<string, number>();

  add(key: string, v: number): void {
    const prev = this.sums.get(key);
    if (prev === undefined) this.sums.set(key, v);
    else if (key.endsWith('_min')) this.sums.set(key, Math.min(prev, v));
    else if (key.endsWith('_max')) this.sums.set(key, Math.max(prev, v));
    else this.sums.set(key, prev + v);
  }

  /** The statistics into `out`, with `policy/ratio_sum` as `policy/ratio_mean` over `n` tokens. */
  result(n: number, out: Metrics = {}): Metrics {
    for (const [k, v] of this.sums) {
      if (k === 'policy/ratio_sum') out['policy/ratio_mean'] = v / n;
      else out[k] = v;
    }
    return out;
  }
}
