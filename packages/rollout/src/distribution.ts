/**
 * The token distribution a sampler draws from, on the host, from one row of logits: temperature, then
 * top-k, then top-p, then renormalisation (HF's warper order; docs/algorithms.md §4.2 for the temperature).
 *
 * The support is defined through the tokens sorted by logit, descending, ties broken by lower id first:
 * - top-k keeps the first k of that order (k = 0 or k >= V: all);
 * - top-p keeps, of what top-k kept, each token whose preceding probability mass (in that order, under
 *   the renormalised top-k distribution) is below topP: the smallest prefix whose mass reaches topP,
 *   at least one token (HF's `TopPLogitsWarper` keeps exactly this set);
 * - temperature 0 is greedy: the support is the first token of the order (the argmax, lowest id on ties).
 *
 * Probabilities are computed in float64 from the float32 logits: `p_i = exp((z_i − max)/τ) / Z` with Z
 * the sum over the support, so `log p_y = (z_y − max)/τ − log Z` is the exact log-prob of the drawn token
 * under the distribution actually sampled from (0 for greedy).
 */
import { drawFromLogits } from '@relign/tensor';
import type { DistributionOptions } from './options.js';

/** A logit row: `logits[offset .. offset + V)`. */
type Row = ArrayLike<number>;

/** One draw: the token and its log-probability under the sampled distribution. */
export interface Draw {
  token: number;
  logprob: number;
}

/**
 * A sampler over a vocabulary of size V with fixed distribution options. Holds scratch buffers of size V
 * (so a decode loop allocates nothing per row); not safe to share between concurrent loops.
 */
export class TokenDistribution {
  readonly vocabSize: number;
  readonly options: Readonly<DistributionOptions>;
  /** Whether top-k or top-p removes tokens (otherwise the support is the whole vocabulary). */
  readonly truncates: boolean;
  private readonly sorted: Float32Array;
  private readonly weights: Float64Array;
  private readonly invTemp: number;

  constructor(vocabSize: number, options: DistributionOptions) {
    if (!Number.isSafeInteger(vocabSize) || vocabSize < 1) {
      throw new Error(`TokenDistribution: vocabSize must be an integer >= 1, got ${vocabSize}`);
    }
    this.vocabSize = vocabSize;
    this.options = { ...options };
    this.truncates =
      options.temperature > 0 && ((options.topK > 0 && options.topK < vocabSize) || options.topP < 1);
    this.sorted = new Float32Array(vocabSize);
    this.weights = new Float64Array(vocabSize);
    this.invTemp = options.temperature > 0 ? 1 / options.temperature : 0;
  }

  /**
   * Draws a token from the row `logits[offset .. offset+V)` by inverse CDF (in id order over the support)
   * with the uniform `u` in [0, 1). Greedy (τ = 0) ignores `u`.
   */
  sample(logits: Row, offset: number, u: number): Draw {
    const V = this.vocabSize;
    const max = this.rowMax(logits, offset);
    if (this.options.temperature === 0) return { token: this.argmax(logits, offset, max), logprob: 0 };
    const w = this.weights;
    const inv = this.invTemp;
    // The same weights, sum and walk as the loops below, in wasm where it runs (@relign/tensor's
    // drawFromLogits: the fdlibm exp that Math.exp is, two logits at a time; same bits).
    const drawn =
      !this.truncates && logits instanceof Float32Array
        ? drawFromLogits(logits, offset, V, max, inv, u)
        : null;
    if (drawn !== null) {
      return { token: drawn.token, logprob: (logits[offset + drawn.token]! - max) * inv - Math.log(drawn.Z) };
    }
    let Z = 0;
    if (!this.truncates) {
      for (let i = 0; i < V; i++) {
        const e = Math.exp((logits[offset + i]! - max) * inv);
        w[i] = e;
        Z += e;
      }
    } else {
      const { threshold, ties } = this.cut(logits, offset, max);
      let tiesLeft = ties;
      for (let i = 0; i < V; i++) {
        const z = logits[offset + i]!;
        let e = 0;
        if (z > threshold || (z === threshold && tiesLeft-- > 0)) e = Math.exp((z - max) * inv);
        w[i] = e;
        Z += e;
      }
    }
    const target = u * Z;
    let acc = 0;
    let token = -1;
    let last = -1;
    for (let i = 0; i < V; i++) {
      const e = w[i]!;
      if (e === 0) continue;
      last = i;
      acc += e;
      if (acc > target) {
        token = i;
        break;
      }
    }
    if (token < 0) token = last; // u·Z rounded up to the total: the last token with mass
    return { token, logprob: (logits[offset + token]! - max) * inv - Math.log(Z) };
  }

  /**
   * Log-probability of `token` under the distribution of the row. With `forceInclude` (default) a token
   * outside the support is added to it (see {@link support}); otherwise it gets -Infinity.
   */
  logprob(logits: Row, offset: number, token: number, forceInclude = true): number {
    const V = this.vocabSize;
    const kept = new Uint8Array(V);
    this.support(logits, offset, kept, forceInclude ? token : -1);
    if (!kept[token]) return -Infinity;
    const max = this.rowMax(logits, offset);
    const inv = this.options.temperature === 0 ? 1 : this.invTemp;
    let Z = 0;
    for (let i = 0; i < V; i++) if (kept[i]) Z += Math.exp((logits[offset + i]! - max) * inv);
    return (logits[offset + token]! - max) * inv - Math.log(Z);
  }

  /**
   * Writes 1 into `out[i]` for every token i of the support of the row and 0 elsewhere.
   *
   * @param force a token to add to the support if missing (-1: none). Recomputing the support from
   *   logits that differ from the sampling pass by float rounding can move a top-k/top-p boundary; forcing
   *   the sampled token in keeps its log-prob finite.
   * @returns whether `force` (if given) was in the support before forcing.
   */
  support(logits: Row, offset: number, out: Uint8Array, force = -1): boolean {
    const V = this.vocabSize;
    const max = this.rowMax(logits, offset);
    if (this.options.temperature === 0) {
      out.fill(0, 0, V);
      out[this.argmax(logits, offset, max)] = 1;
    } else if (!this.truncates) {
      out.fill(1, 0, V);
    } else {
      const { threshold, ties } = this.cut(logits, offset, max);
      let tiesLeft = ties;
      for (let i = 0; i < V; i++) {
        const z = logits[offset + i]!;
        out[i] = z > threshold || (z === threshold && tiesLeft-- > 0) ? 1 : 0;
      }
    }
    if (force < 0) return true;
    const was = out[force] === 1;
    out[force] = 1;
    return was;
  }

  /** The largest logit of the row; rejects NaN and +Infinity (a diverged model). */
  private rowMax(logits: Row, offset: number): number {
    let max = -Infinity;
    for (let i = 0; i < this.vocabSize; i++) {
      const z = logits[offset + i]!;
      if (z > max) max = z;
      else if (Number.isNaN(z)) throw nonFinite(z, i);
    }
    if (max === Infinity || Number.isNaN(max)) throw nonFinite(max, -1);
    if (max === -Infinity) {
      throw new Error('sampling: every logit of a row is -Infinity; there is no token to sample');
    }
    return max;
  }

  /** First index holding the maximum (lowest id on ties). */
  private argmax(logits: Row, offset: number, max: number): number {
    for (let i = 0; i < this.vocabSize; i++) if (logits[offset + i] === max) return i;
    return 0;
  }

  /**
   * The support as "logit > threshold, plus the first `ties` ids (in id order) whose logit equals
   * threshold", from the row sorted descending (sorting a typed copy is native and fast).
   */
  private cut(logits: Row, offset: number, max: number): { threshold: number; ties: number } {
    const V = this.vocabSize;
    const s = this.sorted;
    for (let i = 0; i < V; i++) s[i] = logits[offset + i]!;
    s.sort(); // ascending: the j-th largest is s[V - 1 - j]
    const { topK, topP } = this.options;
    const k = topK > 0 && topK < V ? topK : V;
    let n = k;
    if (topP < 1) {
      const inv = this.invTemp;
      let Zk = 0;
      for (let j = 0; j < k; j++) Zk += Math.exp((s[V - 1 - j]! - max) * inv);
      // Keep the j-th token while the mass before it is below topP (of the top-k mass): at least one.
      const target = topP * Zk;
      let acc = 0;
      n = 0;
      while (n < k && acc < target) {
        acc += Math.exp((s[V - 1 - n]! - max) * inv);
        n++;
      }
    }
    const threshold = s[V - n]!;
    // Entries strictly above the threshold all lie among the first n (descending), so the rest are ties.
    let above = 0;
    for (let j = V - 1; j >= 0 && s[j]! > threshold; j--) above++;
    return { threshold, ties: n - above };
  }
}

function nonFinite(z: number, i: number): Error {
  return new Error(
    `sampling: the model produced a non-finite logit (${z}${i >= 0 ? ` at token ${i}` : ''}); ` +
      'the weights have diverged (NaN/Inf). Check the learning rate and gradient clipping.',
  );
}
