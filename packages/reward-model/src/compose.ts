/**
 * Compositions of reward functions: a weighted sum (TRL's `reward_weights` over several reward functions)
 * and two shaping terms used with it: a length penalty and the missing-EOS penalty of online DPO
 * (docs/algorithms.md §3.4: `missing_eos_penalty` is subtracted from completions that did not end with EOS).
 */
import { resolveInputs, type RewardInputs, type RewardTokenizer } from './inputs.js';
import { checkScoreOptions, checkScores, type RewardFunction, type ScoreOptions } from './reward-function.js';

/** One term of {@link weightedSum}. */
export interface WeightedReward {
  fn: RewardFunction;
  /** Finite weight (may be negative). Default 1. */
  weight?: number;
}

/** A weighted sum that can also report its terms. */
export interface WeightedSumReward extends RewardFunction {
  /** The total and each term's unweighted scores (keyed by the term's name, suffixed `#i` on repeats). */
  scoreComponents(
    prompts: RewardInputs,
    responses: RewardInputs,
    options?: ScoreOptions,
  ): Promise<{ total: Float64Array; components: Map<string, Float64Array> }>;
}

/**
 * `Σ_k w_k · f_k(x, y)`. Each term receives the inputs as given and converts them itself (so a learned
 * model and a text labeler can be mixed); terms are evaluated one after another, in order. Sums are
 * accumulated in float64.
 *
 * @throws Error on an empty list, a term that is not a reward function, or a non-finite weight.
 */
export function weightedSum(
  terms: readonly WeightedReward[],
  options: { name?: string } = {},
): WeightedSumReward {
  if (!Array.isArray(terms) || terms.length === 0) {
    throw new Error('weightedSum: terms must be a non-empty array of { fn, weight }.');
  }
  const resolved = terms.map((t, i) => {
    if (t === null || typeof t !== 'object' || typeof t.fn?.score !== 'function') {
      throw new TypeError(`weightedSum: terms[${i}].fn must be a RewardFunction (an object with score()).`);
    }
    const weight = t.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight)) {
      throw new Error(`weightedSum: terms[${i}].weight must be a finite number, got ${String(weight)}.`);
    }
    return { fn: t.fn, weight };
  });
  const seen = new Map<string, number>();
  const keys = resolved.map(({ fn }, i) => {
    const n = seen.get(fn.name) ?? 0;
    seen.set(fn.name, n + 1);
    return n === 0 ? fn.name : `${fn.name}#${i}`;
  });
  const name =
    options.name ?? `weightedSum(${resolved.map(({ fn, weight }) => `${weight}*${fn.name}`).join(' + ')})`;

  const scoreComponents: WeightedSumReward['scoreComponents'] = async (prompts, responses, scoreOptions) => {
    const { size } = resolveInputs(prompts, responses, `reward function "${name}"`);
    const acc = new Float64Array(size);
    const components = new Map<string, Float64Array>();
    for (let k = 0; k < resolved.length; k++) {
      const { fn, weight } = resolved[k]!;
      // Re-checked here: a term written by hand may not validate its own output.
      const s = checkScores(await fn.score(prompts, responses, scoreOptions), size, fn.name);
      components.set(keys[k]!, s);
      for (let i = 0; i < size; i++) acc[i]! += weight * s[i]!;
    }
    return { total: checkScores(acc, size, name), components };
  };

  return {
    name,
    inputKind: 'any',
    scoreComponents,
    async score(prompts, responses, scoreOptions) {
      return (await scoreComponents(prompts, responses, scoreOptions)).total;
    },
  };
}

/** Options of {@link lengthPenalty}. */
export interface LengthPenaltyOptions {
  /** Penalty per token beyond `offset` (>= 0). */
  coef: number;
  /** Tokens allowed free of penalty. Default 0. */
  offset?: number;
  /** Counts tokens of text responses when `responseLengths` is not given. */
  tokenizer?: RewardTokenizer;
  name?: string;
}

/**
 * `−coef · max(0, L − offset)`, with `L` the response length in tokens: `options.responseLengths[i]` when
 * given, else the length of the token row, else the length of `tokenizer.encode(response)`.
 *
 * @throws Error when text responses come without `responseLengths` and the penalty has no tokenizer.
 */
export function lengthPenalty(options: LengthPenaltyOptions): RewardFunction {
  const { coef, offset = 0, tokenizer } = options ?? ({} as LengthPenaltyOptions);
  if (typeof coef !== 'number' || !Number.isFinite(coef) || coef < 0) {
    throw new Error(`lengthPenalty: coef must be a finite number >= 0, got ${String(coef)}.`);
  }
  if (!Number.isFinite(offset) || offset < 0) {
    throw new Error(`lengthPenalty: offset must be a finite number >= 0, got ${String(offset)}.`);
  }
  const name = options.name ?? 'lengthPenalty';
  return {
    name,
    inputKind: 'any',
    async score(prompts, responses, scoreOptions) {
      const fn = `reward function "${name}"`;
      const rows = resolveInputs(prompts, responses, fn);
      checkScoreOptions(scoreOptions, rows.size, fn);
      const out = new Float64Array(rows.size);
      for (let i = 0; i < rows.size; i++) {
        let len = scoreOptions?.responseLengths?.[i];
        if (len === undefined) {
          if (rows.kind === 'tokens') len = rows.responses[i]!.length;
          else if (tokenizer !== undefined) len = tokenizer.encode(rows.responses[i]!).length;
          else {
            throw new Error(
              `${fn}: text responses need options.responseLengths (token counts) or a tokenizer ` +
                '(lengthPenalty({ coef, tokenizer })) to be measured.',
            );
          }
        }
        const excess = len - offset;
        out[i] = excess > 0 && coef > 0 ? -coef * excess : 0; // never −0
      }
      return checkScores(out, rows.size, name);
    },
  };
}

/** Options of {@link missingEosPenalty}. */
export interface MissingEosPenaltyOptions {
  /** Amount subtracted from a response that did not end with EOS (>= 0; TRL's `missing_eos_penalty`). */
  penalty: number;
  /** For token responses without `endedWithEos`: a response ended with EOS iff its last id is this. */
  eosId?: number;
  name?: string;
}

/**
 * `−penalty` for each response that did not end with EOS, 0 otherwise (docs/algorithms.md §3.4). Whether a response
 * ended is read from `options.endedWithEos[i]`, or for token rows from their last id when `eosId` is set.
 * Text alone cannot say it (a decoded response has no EOS), so text without `endedWithEos` is an error.
 */
export function missingEosPenalty(options: MissingEosPenaltyOptions): RewardFunction {
  const { penalty, eosId } = options ?? ({} as MissingEosPenaltyOptions);
  if (typeof penalty !== 'number' || !Number.isFinite(penalty) || penalty < 0) {
    throw new Error(`missingEosPenalty: penalty must be a finite number >= 0, got ${String(penalty)}.`);
  }
  if (eosId !== undefined && (!Number.isInteger(eosId) || eosId < 0)) {
    throw new Error(`missingEosPenalty: eosId must be a token id (integer >= 0), got ${String(eosId)}.`);
  }
  const name = options.name ?? 'missingEosPenalty';
  return {
    name,
    inputKind: 'any',
    async score(prompts, responses, scoreOptions) {
      const fn = `reward function "${name}"`;
      const rows = resolveInputs(prompts, responses, fn);
      checkScoreOptions(scoreOptions, rows.size, fn);
      const out = new Float32Array(rows.size);
      for (let i = 0; i < rows.size; i++) {
        let ended = scoreOptions?.endedWithEos?.[i];
        if (ended === undefined) {
          if (rows.kind === 'tokens' && eosId !== undefined) {
            const r = rows.responses[i]!;
            ended = r.length > 0 && r[r.length - 1] === eosId;
          } else {
            throw new Error(
              `${fn}: cannot tell whether response ${i} ended with EOS; pass options.endedWithEos ` +
                '(one boolean per row)' +
                (rows.kind === 'tokens' ? ' or create the penalty with { eosId }.' : '.'),
            );
          }
        }
        out[i] = ended || penalty === 0 ? 0 : -penalty;
      }
      return out;
    },
  };
}
