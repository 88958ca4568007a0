/**
 * Per-sequence sums of response-token log-probs, `S(y|x) = Σ_t m_t ℓ(t)` (docs/algorithms.md §0, §3.1), for tokenized
 * prompt/response examples: the quantity every DPO-family loss is built from.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  batchToTensors,
  collate,
  disposeBatchTensors,
  type BatchTensors,
  type CausalLM,
  type TokenizedExample,
} from '@relign/lm';
import { logprobsFromLogits, maskedSum } from '@relign/tensor';

/**
 * `[B]` sums of the log-probs of each row's target tokens (the response and its EOS: the collated loss mask,
 * docs/algorithms.md §0's causal shift, τ = 1 as in docs/algorithms.md §3.1). Differentiable w.r.t. `model`: call it inside
 * `tf.variableGrads` for the policy. The caller disposes the result.
 */
export function responseLogprobSums(model: CausalLM, batch: BatchTensors): tf.Tensor1D {
  return tf.tidy(() => {
    const { logits } = model.forward(batch.inputIds, { attentionMask: batch.attentionMask });
    const [B, T, V] = logits.shape;
    const pred = tf.slice(logits, [0, 0, 0], [B, T - 1, V]);
    const targets = tf.slice(batch.inputIds, [0, 1], [B, T - 1]);
    return maskedSum(logprobsFromLogits(pred, targets), batch.targetMask, 1) as tf.Tensor1D;
  });
}

/** Response token counts (targets: the response and its EOS) of each example, `[N]`. */
export function responseLengths(examples: readonly TokenizedExample[]): Int32Array {
  return Int32Array.from(examples, (e) => e.length - Math.max(e.promptLength, 1));
}

/**
 * Right-pads examples (`collate`, at least 2 columns) and uploads them. The caller disposes the result with
 * `disposeBatchTensors`.
 */
export function examplesToTensors(examples: readonly TokenizedExample[], padId: number): BatchTensors {
  const longest = examples.reduce((m, e) => Math.max(m, e.length), 0);
  return batchToTensors(collate(examples, { padId, padTo: Math.max(longest, 2) }));
}

/**
 * `S(y|x)` of every example under `model`, without gradient, `batchSize` examples per forward pass.
 * @returns `[N]` host values (float32).
 */
export async function sequenceLogprobSums(
  model: CausalLM,
  examples: readonly TokenizedExample[],
  { padId, batchSize }: { padId: number; batchSize: number },
): Promise<Float32Array> {
  const out = new Float32Array(examples.length);
  for (let i = 0; i < examples.length; i += batchSize) {
    const chunk = examples.slice(i, i + batchSize);
    const batch = examplesToTensors(chunk, padId);
    try {
      const sums = responseLogprobSums(model, batch);
      try {
        out.set((await sums.data()) as Float32Array, i);
      } finally {
        sums.dispose();
      }
    } finally {
      disposeBatchTensors(batch);
    }
  }
  return out;
}
