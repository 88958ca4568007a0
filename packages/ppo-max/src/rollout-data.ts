/**
 * The no-grad half of a PPO iteration (docs/algorithms.md §4.6b): the critic's values at rollout time, the
 * per-token rewards, GAE, the advantages each minibatch trains with, and the statistics of
 * docs/algorithms.md §2.10 / §4.9. What the minibatches need lives on the host as `[B, Tr]` arrays; every
 * read from the device is asynchronous and batched (one per pass).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Metrics } from '@relign/core';
import { responseMaskArray, type RolloutBatch, type RolloutMinibatch } from '@relign/rollout';
import type { PpoMaxConfig } from './config.js';
import type { Critic } from './critic.js';
import { gaeOnHost } from './gae.js';
import { chunks, selectRows, selectTokens } from './rows.js';
import { tokenRewards } from './token-rewards.js';
import { whitenAdvantages } from './whiten.js';

/** Per-token host arrays of a rollout, `[B, Tr]` row-major, 0 at padding. */
export interface RolloutData {
  values: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
  /** Advantages whitened over the whole rollout (`advantageWhitening: 'rollout'`). */
  whitened?: Float32Array;
  metrics: Metrics;
}

/**
 * Values, rewards and GAE of `batch` under the current critic. `scores` are the processed sequence scores,
 * `beta` the KL coefficient, `chunkSize` the rows per critic forward pass (0: all).
 */
export async function rolloutData(
  critic: Critic,
  batch: RolloutMinibatch,
  scores: Float32Array,
  beta: number,
  config: PpoMaxConfig,
  chunkSize: number,
): Promise<RolloutData> {
  const { batchSize: B, responseWidth: Tr } = batch;
  const values = await criticValues(critic, batch, chunkSize);
  const mask = responseMaskArray(batch);
  // Per-token rewards and KL on the device, read back together.
  const both = tf.tidy(() => {
    const { rewards, kl } = tokenRewards(
      {
        logprobs: tf.tensor2d(batch.logprobs, [B, Tr]),
        refLogprobs: tf.tensor2d(batch.refLogprobs!, [B, Tr]),
        scores: tf.tensor1d(scores),
        mask: tf.tensor2d(mask, [B, Tr]),
      },
      { klCoef: beta, estimator: config.klEstimator },
    );
    return tf.stack([rewards, kl]);
  });
  const host = await readAndDispose(both);
  const kl = host.subarray(B * Tr);
  const { gamma, lambda } = config;
  const { advantages, returns } = gaeOnHost(host.subarray(0, B * Tr), values, mask, [B, Tr], {
    gamma,
    lambda,
  });
  const whitened =
    config.advantageWhitening === 'rollout'
      ? await whiten(advantages, mask, [B, Tr], config.advantageClip)
      : undefined;
  const metrics = rolloutStatistics(batch, { scores, kl, values, advantages, returns }, beta);
  return { values, advantages, returns, ...(whitened ? { whitened } : {}), metrics };
}

/**
 * The advantages a minibatch (rows `rows` of the rollout, re-padded as `mb`) trains with, `[rows, width]`:
 * whitened over the minibatch (MOSS), taken from the rollout-level whitening, or raw; then clipped when
 * configured (docs/algorithms.md §2.6).
 */
export async function minibatchAdvantages(
  roll: RolloutData,
  Tr: number,
  rows: readonly number[],
  mb: RolloutBatch,
  config: PpoMaxConfig,
): Promise<Float32Array> {
  const width = mb.responseWidth;
  const { advantageWhitening: mode, advantageClip: clip } = config;
  if (mode === 'rollout') return selectTokens(roll.whitened!, Tr, rows, width);
  const raw = selectTokens(roll.advantages, Tr, rows, width);
  if (mode === 'minibatch') return whiten(raw, responseMaskArray(mb), [rows.length, width], clip);
  return clip > 0 ? raw.map((a) => Math.min(Math.max(a, -clip), clip)) : raw;
}

/** The critic's `[B, Tr]` values, `chunkSize` rows per forward pass, read back in one read. */
async function criticValues(
  critic: Critic,
  batch: RolloutMinibatch,
  chunkSize: number,
): Promise<Float32Array> {
  const { batchSize: B, responseWidth: Tr } = batch;
  const parts: { rows: number[]; width: number; values: tf.Tensor }[] = [];
  let flat: tf.Tensor;
  try {
    for (const rows of chunks(
      Array.from({ length: B }, (_, i) => i),
      chunkSize,
    )) {
      const sub = selectRows(batch, rows);
      parts.push({
        rows,
        width: sub.responseWidth,
        values: tf.tidy(() => tf.reshape(critic.values(sub), [-1])),
      });
    }
    flat = tf.concat(parts.map((p) => p.values));
  } finally {
    tf.dispose(parts.map((p) => p.values));
  }
  const host = await readAndDispose(flat);
  const values = new Float32Array(B * Tr);
  let offset = 0;
  for (const { rows, width } of parts) {
    rows.forEach((r, i) => values.set(host.subarray(offset + i * width, offset + (i + 1) * width), r * Tr));
    offset += rows.length * width;
  }
  return values;
}

/** {@link whitenAdvantages} of host `[B, T]` advantages (docs/algorithms.md §2.6), read back. */
async function whiten(
  advantages: Float32Array,
  mask: Float32Array,
  shape: [number, number],
  clip: number,
): Promise<Float32Array> {
  const w = tf.tidy(() =>
    whitenAdvantages(tf.tensor2d(advantages, shape), tf.tensor2d(mask, shape), { clip }),
  );
  return readAndDispose(w);
}

async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

/** The rollout statistics of docs/algorithms.md §2.10 / §4.9, on the host in float64, over valid tokens. */
function rolloutStatistics(
  batch: RolloutMinibatch,
  d: {
    scores: Float32Array;
    kl: Float32Array;
    values: Float32Array;
    advantages: Float32Array;
    returns: Float32Array;
  },
  beta: number,
): Metrics {
  const { batchSize: B, responseWidth: Tr } = batch;
  const ref = batch.refLogprobs!;
  let n = 0;
  let klSeq = 0;
  let refKl = 0;
  let nll = 0;
  let nllRef = 0;
  let vSum = 0;
  let rSum = 0;
  let rSq = 0;
  let aSum = 0;
  let aSq = 0;
  let scoreSum = 0;
  for (let b = 0; b < B; b++) {
    const len = batch.responseLengths[b]!;
    let rowDelta = 0;
    for (let t = 0; t < len; t++) {
      const i = b * Tr + t;
      klSeq += d.kl[i]!;
      rowDelta += batch.logprobs[i]! - ref[i]!;
      nll -= batch.logprobs[i]!;
      nllRef -= ref[i]!;
      vSum += d.values[i]!;
      rSum += d.returns[i]!;
      rSq += d.returns[i]! ** 2;
      aSum += d.advantages[i]!;
      aSq += d.advantages[i]! ** 2;
    }
    refKl += rowDelta / len;
    n += len;
    scoreSum += d.scores[b]!;
  }
  const rMean = rSum / n;
  const aMean = aSum / n;
  return {
    'ppo/score_mean': scoreSum / B,
    'ppo/kl': klSeq / B,
    'ppo/non_score_reward': (-beta * klSeq) / B,
    'ppo/ref_kl': refKl / B,
    'ppo/perplexity': Math.exp(nll / n),
    'ppo/perplexity_ref': Math.exp(nllRef / n),
    'ppo/response_length': n / B,
    'value/mean': vSum / n,
    'ppo/returns_mean': rMean,
    'ppo/returns_var': Math.max(rSq / n - rMean * rMean, 0),
    'ppo/advantages_mean': aMean,
    'ppo/advantages_var': Math.max(aSq / n - aMean * aMean, 0),
  };
}
