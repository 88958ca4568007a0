/**
 * Held-out loss and perplexity of a causal LM on tokenized examples.
 */
import * as tf from '@tensorflow/tfjs-core';
import { collate } from '../data/collate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import type { CausalLM } from '../model/causal-lm.js';
import { batchToTensors, causalLmNllSum, disposeBatchTensors } from './loss.js';

export interface EvaluateOptions {
  /** Examples per forward pass. Default 16. */
  batchSize?: number;
  /** Pad id for batching (any valid id: masks come from lengths). Default 0. */
  padId?: number;
}

export interface EvalResult {
  /** Mean negative log-likelihood per target token (nats), over the whole set. */
  loss: number;
  /** `exp(loss)`. */
  perplexity: number;
  /** Number of target tokens scored. */
  targets: number;
}

/**
 * Token-weighted mean NLL over every target token of `examples` (the completion tokens and EOS of SFT
 * examples; all tokens but the first of a text block), in order, without gradients. No tensors remain.
 * The per-batch sums stay on the device and are read back once, asynchronously, at the end.
 *
 * @throws Error when `examples` has no target token at all.
 */
export async function evaluateLoss(
  model: CausalLM,
  examples: readonly TokenizedExample[],
  options: EvaluateOptions = {},
): Promise<EvalResult> {
  const { batchSize = 16, padId = 0 } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`evaluateLoss: batchSize must be an integer >= 1 (got ${batchSize}).`);
  let targets = 0;
  const sums: tf.Scalar[] = [];
  let values: ArrayLike<number>;
  try {
    for (let i = 0; i < examples.length; i += batchSize) {
      const host = collate(examples.slice(i, i + batchSize), { padId });
      if (host.numTargets === 0) continue; // (a batch with a target has T >= 2)
      const batch = batchToTensors(host);
      try {
        sums.push(causalLmNllSum(model, batch));
      } finally {
        disposeBatchTensors(batch);
      }
      targets += host.numTargets;
    }
    if (targets === 0)
      throw new Error('evaluateLoss: the examples contain no target token (every example is a prompt only).');
    const stacked = tf.stack(sums);
    try {
      values = await stacked.data();
    } finally {
      stacked.dispose();
    }
  } finally {
    tf.dispose(sums);
  }
  // Summed on the host in float64, batch by batch, in order.
  let nll = 0;
  for (let i = 0; i < values.length; i++) nll += values[i]!;
  const loss = nll / targets;
  return { loss, perplexity: Math.exp(loss), targets };
}
