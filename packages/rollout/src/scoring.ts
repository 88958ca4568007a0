/**
 * Scoring passes over a rollout batch: per-token log-probs of the responses under a model (the current
 * policy, or the frozen reference) and per-token values of a value head (docs/algorithms.md §0, §4.2, §4.6b).
 *
 * Alignment (docs/algorithms.md §0): response token t of a row is predicted by the position just before it, i.e. the
 * last prompt token for t = 0 and response token t − 1 after that. Both passes run the model once on
 * `[prompt (left-padded), response[:, :Tr−1]]` with the padding masked, and read positions
 * `Tp − 1 .. Tp + Tr − 2`, so log-probs and values share one `[B, Tr]` layout with the batch's
 * `logprobs`: index t is about response token t, and padding is 0.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, ScalarHead } from '@relign/lm';
import { logprobsFromLogits } from '@relign/tensor';
import { responseMaskArray, validateRolloutBatch, type RolloutBatch } from './batch.js';
import { TokenDistribution } from './distribution.js';
import { checkDistribution } from './options.js';

/** How {@link computeLogprobs} treats top-k / top-p. */
export type Truncation = 'none' | 'as-sampled';

export interface LogprobOptions {
  /** τ, default the batch's sampling temperature (docs/algorithms.md §4.2: use the sampling τ for every model). */
  temperature?: number;
  /**
   * `'none'` (default): `log softmax(z/τ)[y]` over the whole vocabulary — what RL trains with (docs/algorithms.md §7:
   * all log-probs at the sampling temperature with top-k/top-p off); needs τ > 0.
   * `'as-sampled'`: the batch's top-k/top-p truncation is re-applied to each row and the distribution
   * renormalised, so on a fresh batch the result equals the sampling log-probs (importance ratio 1). The
   * support is recomputed from the logits of this pass, with the sampled token always included (a float
   * rounding difference can move a support boundary). With τ = 0 (greedy) the support is the argmax and
   * the log-prob is 0 at the argmax.
   */
  truncation?: Truncation;
}

/** Added to the logits of tokens outside the support: exp underflows to exactly 0, the sum stays finite. */
const EXCLUDED = -1e30;

/** Model input covering prompt + all response tokens but the last, and its padding mask. */
function sequenceInputs(
  model: CausalLM,
  batch: RolloutBatch,
  fn: string,
): { ids: tf.Tensor2D; mask: tf.Tensor2D | undefined } {
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr } = batch;
  const W = Tp + Tr - 1;
  if (W > model.config.n_positions) {
    throw new Error(
      `${fn}: promptWidth ${Tp} + responseWidth ${Tr} − 1 = ${W} exceeds the model's n_positions=` +
        `${model.config.n_positions}`,
    );
  }
  const ids = new Int32Array(B * W);
  const mask = new Float32Array(B * W);
  let padded = false;
  for (let b = 0; b < B; b++) {
    ids.set(batch.promptTokens.subarray(b * Tp, (b + 1) * Tp), b * W);
    ids.set(batch.responseTokens.subarray(b * Tr, b * Tr + Tr - 1), b * W + Tp);
    const lp = batch.promptLengths[b]!;
    const lr = Math.min(batch.responseLengths[b]!, Tr - 1);
    mask.fill(1, b * W + Tp - lp, b * W + Tp + lr);
    if (lp !== Tp || lr !== Tr - 1) padded = true;
  }
  return {
    ids: tf.tensor2d(ids, [B, W], 'int32'),
    // No padding anywhere: the model's dense path gives the same positions without a mask.
    mask: padded ? tf.tensor2d(mask, [B, W], 'float32') : undefined,
  };
}

/**
 * Per-token log-probs of the batch's responses under `model`.
 *
 * @param model the policy (differentiable: call inside `tf.variableGrads` for the training pass) or the
 *   frozen reference.
 * @param batch a {@link RolloutBatch} (or a replay-buffer minibatch).
 * @returns float32 `[B, Tr]`, per token, aligned with `batch.logprobs`; 0 at padding. The caller disposes it.
 * @throws Error naming the batch field or option that is invalid.
 */
export function computeLogprobs(
  model: CausalLM,
  batch: RolloutBatch,
  options: LogprobOptions = {},
): tf.Tensor2D {
  const FN = 'computeLogprobs';
  const V = model.config.vocab_size;
  validateRolloutBatch(batch, FN, V);
  const { temperature = batch.options.temperature, truncation = 'none' } = options;
  if (truncation !== 'none' && truncation !== 'as-sampled') {
    throw new Error(`${FN}: options.truncation must be 'none' or 'as-sampled', got ${String(truncation)}`);
  }
  const dist = new TokenDistribution(V, {
    temperature,
    topK: truncation === 'as-sampled' ? batch.options.topK : 0,
    topP: truncation === 'as-sampled' ? batch.options.topP : 1,
  });
  checkDistribution(dist.options, FN);
  const greedy = temperature === 0;
  if (greedy && truncation === 'none') {
    throw new Error(
      `${FN}: temperature 0 (greedy) has no full-vocabulary log-probs; pass truncation: 'as-sampled' ` +
        '(log-prob 0 at the argmax) or a temperature > 0',
    );
  }
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr } = batch;
  const { ids, mask } = sequenceInputs(model, batch, FN);
  try {
    return tf.tidy(() => {
      const { logits } = model.forward(ids, mask ? { attentionMask: mask } : {});
      const z = tf.slice(logits, [0, Tp - 1, 0], [B, Tr, V]);
      const tokens = tf.tensor2d(batch.responseTokens, [B, Tr], 'int32');
      let lp: tf.Tensor2D;
      if (dist.truncates || greedy) {
        // The support is a host decision (not differentiated), applied as an additive mask: the gradient
        // flows through the kept logits exactly as for the renormalised distribution.
        const host = z.dataSync();
        const add = new Float32Array(B * Tr * V);
        const kept = new Uint8Array(V);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < batch.responseLengths[b]!; t++) {
            const row = (b * Tr + t) * V;
            dist.support(host, row, kept, batch.responseTokens[b * Tr + t]!);
            for (let i = 0; i < V; i++) if (!kept[i]) add[row + i] = EXCLUDED;
          }
        }
        lp = logprobsFromLogits(tf.add(z, tf.tensor3d(add, [B, Tr, V])), tokens, greedy ? 1 : temperature);
      } else {
        lp = logprobsFromLogits(z, tokens, temperature);
      }
      return tf.mul(lp, tf.tensor2d(responseMaskArray(batch), [B, Tr]));
    });
  } finally {
    ids.dispose();
    mask?.dispose();
  }
}

/**
 * Per-token values of a value head over the batch's responses: index t is the value of the state that
 * predicts response token t (prompt + response[:t]), the position whose log-prob is index t of
 * {@link computeLogprobs} (docs/algorithms.md §4.6b: `V_old` at the same positions as `ℓ_old`).
 *
 * @param model the trunk the head reads (`CausalLM`, e.g. the policy or a critic's own trunk).
 * @param head a `ScalarHead` with `hiddenSize = n_embd`.
 * @returns float32 `[B, Tr]`, per token, 0 at padding; differentiable w.r.t. model and head. The caller
 *   disposes it.
 */
export function computeValues(model: CausalLM, head: ScalarHead, batch: RolloutBatch): tf.Tensor2D {
  const FN = 'computeValues';
  validateRolloutBatch(batch, FN, model.config.vocab_size);
  if (head.hiddenSize !== model.config.n_embd) {
    throw new Error(
      `${FN}: the head's hiddenSize ${head.hiddenSize} differs from the model's n_embd ${model.config.n_embd}`,
    );
  }
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr } = batch;
  const { ids, mask } = sequenceInputs(model, batch, FN);
  try {
    return tf.tidy(() => {
      const { hidden } = model.forwardHidden(ids, mask ? { attentionMask: mask } : {});
      const h = tf.slice(hidden, [0, Tp - 1, 0], [B, Tr, model.config.n_embd]);
      return tf.mul(head.apply(h), tf.tensor2d(responseMaskArray(batch), [B, Tr]));
    });
  } finally {
    ids.dispose();
    mask?.dispose();
  }
}
