/**
 * The unigram baseline of held-out perplexity: what a model that ignores context achieves.
 */
import type { TokenizedExample } from '../data/tokenize.js';

export interface UnigramResult {
  /** Mean −log p(token) over the evaluated targets (nats). */
  loss: number;
  /** `exp(loss)`. */
  perplexity: number;
  /** Targets scored. */
  targets: number;
}

/** Calls `fn(id)` for every target token of `examples` (positions `max(promptLength, 1) .. length − 1`). */
function forEachTarget(examples: readonly TokenizedExample[], fn: (id: number) => void): void {
  for (const ex of examples) {
    for (let t = Math.max(ex.promptLength, 1); t < ex.length; t++) fn(ex.ids[t]!);
  }
}

/**
 * Add-one (Laplace) smoothed unigram model estimated on the **target** tokens of `train`,
 * `p(v) = (count(v) + 1) / (N + V)`, scored on the target tokens of `heldOut` — the same targets
 * `evaluateLoss` scores, so the two perplexities compare directly.
 *
 * @param vocabSize V (every id must be below it).
 */
export function unigramBaseline(
  train: readonly TokenizedExample[],
  heldOut: readonly TokenizedExample[],
  vocabSize: number,
): UnigramResult {
  if (!Number.isInteger(vocabSize) || vocabSize < 1)
    throw new Error(`unigramBaseline: vocabSize must be an integer >= 1 (got ${vocabSize}).`);
  const counts = new Float64Array(vocabSize);
  let n = 0;
  const check = (id: number) => {
    if (!(id >= 0 && id < vocabSize))
      throw new Error(`unigramBaseline: token id ${id} is outside [0, ${vocabSize}).`);
  };
  forEachTarget(train, (id) => {
    check(id);
    counts[id]! += 1;
    n++;
  });
  let nll = 0;
  let targets = 0;
  const denom = Math.log(n + vocabSize);
  forEachTarget(heldOut, (id) => {
    check(id);
    nll += denom - Math.log(counts[id]! + 1);
    targets++;
  });
  if (targets === 0) throw new Error('unigramBaseline: the held-out examples have no target token.');
  const loss = nll / targets;
  return { loss, perplexity: Math.exp(loss), targets };
}
