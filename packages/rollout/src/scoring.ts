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
import { entropyFromLogits, logprobsFromLogits } from '@relign/tensor';
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
   * the log-prob is 0 at the argmax. Needs `support` from {@link truncationSupport}.
   */
  truncation?: Truncation;
  /**
   * The top-k/top-p support of every response token, for `truncation: 'as-sampled'`: from
   * `await truncationSupport(model, batch, { temperature })` with the same model parameters. The support is
   * a host decision over the logits; computing it beforehand keeps this pass free of synchronous reads
   * (which stall GPU backends) and differentiable.
   */
  support?: TruncationSupport;
}

/** The as-sampled support of a batch's response tokens ({@link truncationSupport}). */
export interface TruncationSupport {
  batchSize: number;
  responseWidth: number;
  vocabSize: number;
  temperature: number;
  /** `[B·Tr·V]` additive mask: 0 on the support, −1e30 elsewhere (and 0 at padding). */
  add: Float32Array;
}

/** Added to the logits of tokens outside the support: exp underflows to exactly 0, the sum stays finite. */
const EXCLUDED = -1e30;

/**
 * The model input of every scoring pass: `[prompt (left-padded), response[:, :Tr−1]]` as int32 `[B, Tp + Tr − 1]`
 * and its float32 padding mask (`undefined` when no row is padded). Throws (naming `fn`) when the sequence
 * does not fit the model's `n_positions`. Caller-owned tensors.
 */
export function sequenceInputs(
  model: CausalLM,
  batch: RolloutBatch,
  fn: string,
): { ids: tf.Tensor2D; mask: tf.Tensor2D | undefined } {
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr } = batch;
  const W = Tp + Tr - 1;
  if (W > model.dims.maxPositions) {
    throw new Error(
      `${fn}: promptWidth ${Tp} + responseWidth ${Tr} − 1 = ${W} exceeds the model's n_positions=` +
        `${model.dims.maxPositions}`,
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
  const truncated = dist.truncates || greedy;
  if (truncated) checkSupport(options.support, B, Tr, V, temperature, FN);
  const { ids, mask } = sequenceInputs(model, batch, FN);
  try {
    return tf.tidy(() => {
      const { logits } = model.forward(ids, mask ? { attentionMask: mask } : {});
      const z = tf.slice(logits, [0, Tp - 1, 0], [B, Tr, V]);
      const tokens = tf.tensor2d(batch.responseTokens, [B, Tr], 'int32');
      let lp: tf.Tensor2D;
      if (truncated) {
        // The support is a host decision (not differentiated), applied as an additive mask: the gradient
        // flows through the kept logits exactly as for the renormalised distribution.
        const add = tf.tensor3d(options.support!.add, [B, Tr, V]);
        lp = logprobsFromLogits(tf.add(z, add), tokens, greedy ? 1 : temperature);
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
 * The support {@link computeLogprobs} needs for `truncation: 'as-sampled'` (or τ = 0): the batch's top-k/top-p
 * truncation re-applied to the logits of `model` at every response token, with the sampled token always
 * included. One forward pass without gradients and one asynchronous read of the response logits.
 *
 * @param options `temperature`: τ, default the batch's sampling temperature (pass the same τ to
 *   {@link computeLogprobs}).
 * @throws Error naming the batch field or option that is invalid, or a non-finite logit.
 */
export async function truncationSupport(
  model: CausalLM,
  batch: RolloutBatch,
  options: { temperature?: number } = {},
): Promise<TruncationSupport> {
  const FN = 'truncationSupport';
  const V = model.config.vocab_size;
  validateRolloutBatch(batch, FN, V);
  const { temperature = batch.options.temperature } = options;
  const dist = new TokenDistribution(V, {
    temperature,
    topK: batch.options.topK,
    topP: batch.options.topP,
  });
  checkDistribution(dist.options, FN);
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr } = batch;
  const { ids, mask } = sequenceInputs(model, batch, FN);
  let z: tf.Tensor3D;
  try {
    z = tf.tidy(() => {
      const { logits } = model.forward(ids, mask ? { attentionMask: mask } : {});
      return tf.slice(logits, [0, Tp - 1, 0], [B, Tr, V]);
    });
  } finally {
    ids.dispose();
    mask?.dispose();
  }
  let host: ArrayLike<number>;
  try {
    host = await z.data();
  } finally {
    z.dispose();
  }
  const add = new Float32Array(B * Tr * V);
  const kept = new Uint8Array(V);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < batch.responseLengths[b]!; t++) {
      const row = (b * Tr + t) * V;
      dist.support(host, row, kept, batch.responseTokens[b * Tr + t]!);
      for (let i = 0; i < V; i++) if (!kept[i]) add[row + i] = EXCLUDED;
    }
  }
  return { batchSize: B, responseWidth: Tr, vocabSize: V, temperature, add };
}

function checkSupport(
  support: TruncationSupport | undefined,
  B: number,
  Tr: number,
  V: number,
  temperature: number,
  fn: string,
): void {
  if (support === undefined) {
    throw new Error(
      `${fn}: truncation 'as-sampled' (or temperature 0) needs options.support: pass ` +
        '`support: await truncationSupport(model, batch, { temperature })`, computed with the same parameters.',
    );
  }
  const got = [support.batchSize, support.responseWidth, support.vocabSize];
  if (got[0] !== B || got[1] !== Tr || got[2] !== V || support.add?.length !== B * Tr * V) {
    throw new Error(
      `${fn}: options.support is for [B, Tr, V] = [${got.join(', ')}], this pass is [${B}, ${Tr}, ${V}]; ` +
        'compute it with truncationSupport for this batch and model.',
    );
  }
  if (support.temperature !== temperature) {
    throw new Error(
      `${fn}: options.support was computed at temperature ${support.temperature}, this pass uses ${temperature}.`,
    );
  }
}

/**
 * Per-token log-probs and entropies of the batch's responses under `model`, from one forward pass: the
 * training pass of a loss with an entropy term (docs/algorithms.md §2.7, §4.6). Both are of the full-vocabulary
 * `softmax(z / τ)`, so the log-probs equal {@link computeLogprobs}'s with truncation `'none'`.
 *
 * @param options `temperature`: τ > 0, default the batch's sampling temperature.
 * @returns float32 `[B, Tr]` each, aligned with `batch.logprobs`, 0 at padding; differentiable w.r.t. the
 *   model. The caller disposes them.
 * @throws Error naming the batch field, or τ ≤ 0 (a greedy batch has no sampling distribution to measure).
 */
export function computeLogprobsAndEntropy(
  model: CausalLM,
  batch: RolloutBatch,
  options: { temperature?: number } = {},
): { logprobs: tf.Tensor2D; entropy: tf.Tensor2D } {
  const FN = 'computeLogprobsAndEntropy';
  const V = model.config.vocab_size;
  validateRolloutBatch(batch, FN, V);
  const { temperature = batch.options.temperature } = options;
  if (!(temperature > 0 && Number.isFinite(temperature))) {
    throw new Error(
      `${FN}: the entropy needs a temperature > 0, got ${temperature} (default: the batch's sampling ` +
        'temperature; pass options.temperature for a greedy batch)',
    );
  }
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr } = batch;
  const { ids, mask } = sequenceInputs(model, batch, FN);
  try {
    return tf.tidy(() => {
      const { logits } = model.forward(ids, mask ? { attentionMask: mask } : {});
      const z = tf.slice(logits, [0, Tp - 1, 0], [B, Tr, V]) as tf.Tensor3D;
      const tokens = tf.tensor2d(batch.responseTokens, [B, Tr], 'int32');
      const m = tf.tensor2d(responseMaskArray(batch), [B, Tr]);
      return {
        logprobs: tf.mul(logprobsFromLogits(z, tokens, temperature), m) as tf.Tensor2D,
        entropy: tf.mul(entropyFromLogits(z, temperature), m) as tf.Tensor2D,
      };
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
  if (head.hiddenSize !== model.dims.hiddenSize) {
    throw new Error(
      `${FN}: the head's hiddenSize ${head.hiddenSize} differs from the model's n_embd ${model.dims.hiddenSize}`,
    );
  }
  const { batchSize: B, promptWidth: Tp, responseWidth: Tr } = batch;
  const { ids, mask } = sequenceInputs(model, batch, FN);
  try {
    return tf.tidy(() => {
      const { hidden } = model.forwardHidden(ids, mask ? { attentionMask: mask } : {});
      const h = tf.slice(hidden, [0, Tp - 1, 0], [B, Tr, model.dims.hiddenSize]);
      return tf.mul(head.apply(h), tf.tensor2d(responseMaskArray(batch), [B, Tr]));
    });
  } finally {
    ids.dispose();
    mask?.dispose();
  }
}
