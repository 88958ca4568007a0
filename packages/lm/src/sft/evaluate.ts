/**
 * Held-out loss and perplexity of a causal LM on tokenized examples.
 */
import { collate } from '../data/collate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import type { CausalLM } from '../model/gpt2.js';
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
 *
 * @throws Error when `examples` has no target token at all.
 */
export function evaluateLoss(
  model: CausalLM,
  examples: readonly TokenizedExample[],
  options: EvaluateOptions = {},
): EvalResult {
  const { batchSize = 16, padId = 0 } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`evaluateLoss: batchSize must be an integer >= 1 (got ${batchSize}).`);
  let nll = 0;
  let targets = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const host = collate(examples.slice(i, i + batchSize), { padId });
    if (host.numTargets === 0) continue; // (a batch with a target has T >= 2)
    const batch = batchToTensors(host);
    try {
      const s = causalLmNllSum(model, batch);
      nll += s.dataSync()[0]!;
      s.dispose();
    } finally {
      disposeBatchTensors(batch);
    }
    targets += host.numTargets;
  }
  if (targets === 0)
    throw new Error('evaluateLoss: the examples contain no target token (every example is a prompt only).');
  const loss = nll / targets;
  return { loss, perplexity: Math.exp(loss), targets };
}
