/**
 * Preference labelling: turning any reward function (an automatic labeler standing in for a person, or a
 * proxy reward model) into TRL-format preference pairs by Bradley–Terry sampling.
 */
import { createRng } from '@relign/tensor';
import type { RewardInputs, TokenIds } from './inputs.js';
import { checkScores, type RewardFunction, type ScoreOptions } from './reward-function.js';

/** One preference example in TRL's format (text, or token ids when labelled from token rows). */
export interface PreferencePair<T = string> {
  prompt: T;
  chosen: T;
  rejected: T;
}

/** Options of {@link labelPairs}. */
export interface LabelPairsOptions {
  /**
   * Bradley–Terry temperature τ >= 0: `P(A ≻ B) = σ((s_A − s_B) / τ)`. τ = 0 is deterministic (the higher
   * score wins). Larger τ = noisier labels, like a less consistent annotator.
   */
  temperature: number;
  /** Seed of the label draws (ignored when τ = 0). Default 0. */
  seed?: number | string;
  /** Per-row metadata for the oracle when scoring responses A / B (e.g. `endedWithEos`). */
  scoreOptionsA?: ScoreOptions;
  scoreOptionsB?: ScoreOptions;
}

/** What {@link labelPairs} returns: the pairs and the diagnostics behind each label. */
export interface LabelPairsResult<T> {
  /** One pair per labelled row, in row order. */
  pairs: PreferencePair<T>[];
  /** For each pair, the input row it came from. */
  rows: number[];
  /** `[N]` oracle scores of responses A and B (every row). */
  scoresA: Float64Array;
  scoresB: Float64Array;
  /** `[N]` `P(A ≻ B)` of each row (0.5 for a tie; 1/0/0.5 at τ = 0). */
  probA: Float64Array;
  /** `[N]` the label of each row: `'A'`, `'B'`, or `null` when the row was skipped. */
  winner: ('A' | 'B' | null)[];
  /** Rows skipped because A and B are the same response (a pair with chosen = rejected teaches nothing). */
  identical: number;
  /** Rows skipped at τ = 0 because `s_A = s_B` exactly (no preference; picking a side would bias by position). */
  ties: number;
}

/** `σ(x)` in float64 without overflow. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

function sameResponse(a: string | TokenIds, b: string | TokenIds): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Labels response pairs with an oracle reward function by Bradley–Terry sampling:
 * `P(A ≻ B) = σ((s_A − s_B) / τ)`, then A is chosen iff `u < P` with `u ~ U[0, 1)` from the seeded RNG
 * (one draw per row, whether or not the row is kept, so a row's label does not depend on other rows).
 * With τ = 0 the higher score wins and exact ties are skipped. Rows whose two responses are identical are
 * always skipped. This is how the default task makes its "human" labels (shared notes, data sources).
 *
 * @param prompts `[N]` prompts; `responsesA`, `responsesB`: `[N]` two responses per prompt (all strings or
 *   all token arrays, as the oracle accepts).
 * @throws Error on mismatched lengths, a bad temperature, or a non-finite oracle score (naming the row).
 */
export async function labelPairs<T extends string | TokenIds>(
  prompts: readonly T[],
  responsesA: readonly T[],
  responsesB: readonly T[],
  oracle: RewardFunction,
  options: LabelPairsOptions,
): Promise<LabelPairsResult<T>> {
  if (typeof oracle?.score !== 'function') {
    throw new TypeError('labelPairs: oracle must be a RewardFunction (an object with score()).');
  }
  const { temperature, seed = 0 } = options ?? ({} as LabelPairsOptions);
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new Error(
      `labelPairs: options.temperature must be a finite number >= 0 (0 = deterministic), got ${String(temperature)}.`,
    );
  }
  const n = prompts.length;
  if (responsesA.length !== n || responsesB.length !== n) {
    throw new Error(
      `labelPairs: prompts (${n}), responsesA (${responsesA.length}) and responsesB (${responsesB.length}) must have the same length.`,
    );
  }
  const name = oracle.name ?? 'oracle';
  const scoresA = checkScores(
    await oracle.score(prompts as RewardInputs, responsesA as RewardInputs, options.scoreOptionsA),
    n,
    name,
  );
  const scoresB = checkScores(
    await oracle.score(prompts as RewardInputs, responsesB as RewardInputs, options.scoreOptionsB),
    n,
    name,
  );
  const rng = createRng(seed);
  const result: LabelPairsResult<T> = {
    pairs: [],
    rows: [],
    scoresA,
    scoresB,
    probA: new Float64Array(n),
    winner: [],
    identical: 0,
    ties: 0,
  };
  for (let i = 0; i < n; i++) {
    const d = scoresA[i]! - scoresB[i]!;
    const u = temperature > 0 ? rng.uniform() : 0;
    const p = temperature > 0 ? sigmoid(d / temperature) : d > 0 ? 1 : d < 0 ? 0 : 0.5;
    result.probA[i] = p;
    const a = responsesA[i]!;
    const b = responsesB[i]!;
    if (sameResponse(a, b)) {
      result.identical++;
      result.winner.push(null);
      continue;
    }
    if (temperature === 0 && d === 0) {
      result.ties++;
      result.winner.push(null);
      continue;
    }
    const aWins = temperature > 0 ? u < p : d > 0;
    result.winner.push(aWins ? 'A' : 'B');
    result.pairs.push({ prompt: prompts[i]!, chosen: aWins ? a : b, rejected: aWins ? b : a });
    result.rows.push(i);
  }
  return result;
}
