/**
 * One interface for everything that scores responses: a learned reward model, a programmatic labeler
 * (AFINN, VADER, a regex, a unit test), and compositions of those (weighted sums, penalties).
 */
import {
  asText,
  asTokens,
  resolveInputs,
  type RewardInputKind,
  type RewardInputs,
  type RewardTokenizer,
  type TokenIds,
} from './inputs.js';

/** Per-row metadata that some reward functions need (the rollout knows it; text alone does not say it). */
export interface ScoreOptions {
  /**
   * `[B]`: whether each response ended with the EOS token (false: generation was cut at the length limit).
   * Needed by {@link missingEosPenalty}; a learned reward model given text appends EOS only where this is
   * not false.
   */
  endedWithEos?: readonly boolean[];
  /** `[B]`: response lengths in tokens (EOS included when present). Used by {@link lengthPenalty}. */
  responseLengths?: readonly number[];
}

/**
 * Something that scores a batch of (prompt, response) rows.
 *
 * Inputs are either all strings or all token-id arrays (`prompts[i]` pairs with `responses[i]`). A function
 * works natively on one kind (`inputKind`); it converts the other kind with the tokenizer it was created
 * with, or throws an error saying that a tokenizer is needed. Token responses are scored as given (a
 * rollout's response already holds its EOS when it has one).
 *
 * Every implementation resolves to a `Float32Array` of `B` finite scores; a NaN or infinite score is an
 * error naming the function and the row (never silently passed on to training).
 */
export interface RewardFunction {
  /** A short name for logs and error messages. */
  readonly name: string;
  /** The kind the function works on natively; `'any'` when it takes both without conversion. */
  readonly inputKind: RewardInputKind | 'any';
  /** @returns `[B]` scores, higher = better. */
  score(prompts: RewardInputs, responses: RewardInputs, options?: ScoreOptions): Promise<Float32Array>;
}

/** What a per-row function receives besides the prompt and response. */
export interface RowInfo {
  /** Row index in the batch. */
  index: number;
  /** `options.endedWithEos[index]`, when given. */
  endedWithEos?: boolean;
  /** `options.responseLengths[index]`, when given. */
  responseLength?: number;
}

/** Options of {@link rewardFunction} and {@link batchRewardFunction}. */
export interface ProgrammaticRewardOptions {
  /** Name for logs and errors. Default: the function's own name, else `'reward'`. */
  name?: string;
  /** The kind the wrapped function takes. Default `'text'`. */
  inputKind?: RewardInputKind;
  /** Converts the other input kind (decode for a text function, encode for a token function). */
  tokenizer?: RewardTokenizer;
}

/**
 * Checks and converts scores: exactly `size` finite numbers (also after rounding to float32).
 *
 * @throws Error naming `name`, the first bad row and its value, and how many rows are bad.
 */
export function checkScores(values: ArrayLike<number>, size: number, name: string): Float32Array {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
    throw new TypeError(
      `reward function "${name}" returned ${values === null ? 'null' : typeof values}; expected an array of ${size} numbers.`,
    );
  }
  if (values.length !== size) {
    throw new Error(
      `reward function "${name}" returned ${values.length} scores for a batch of ${size} rows.`,
    );
  }
  const out = new Float32Array(size);
  let firstBad = -1;
  let bad = 0;
  for (let i = 0; i < size; i++) {
    const v = values[i];
    if (typeof v !== 'number') {
      throw new TypeError(
        `reward function "${name}" returned ${typeof v} for row ${i}; scores must be numbers.`,
      );
    }
    out[i] = v;
    if (!Number.isFinite(out[i]!)) {
      bad++;
      if (firstBad < 0) firstBad = i;
    }
  }
  if (bad > 0) {
    throw new Error(
      `reward function "${name}" returned a non-finite score for row ${firstBad} (${String(values[firstBad])})` +
        `${bad > 1 ? ` and ${bad - 1} other rows` : ''}; scores must be finite float32 numbers. Fix or filter ` +
        'those rows before training on them.',
    );
  }
  return out;
}

/** Validates the per-row options against the batch size. */
export function checkScoreOptions(options: ScoreOptions | undefined, size: number, fn: string): void {
  if (options === undefined) return;
  const { endedWithEos, responseLengths } = options;
  if (endedWithEos !== undefined) {
    if (!Array.isArray(endedWithEos) || endedWithEos.length !== size) {
      throw new Error(`${fn}: options.endedWithEos must be an array of ${size} booleans (one per row).`);
    }
    endedWithEos.forEach((v, i) => {
      if (typeof v !== 'boolean')
        throw new TypeError(`${fn}: options.endedWithEos[${i}] must be a boolean, got ${typeof v}.`);
    });
  }
  if (responseLengths !== undefined) {
    if (!Array.isArray(responseLengths) || responseLengths.length !== size) {
      throw new Error(`${fn}: options.responseLengths must be an array of ${size} integers (one per row).`);
    }
    responseLengths.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0) {
        throw new TypeError(
          `${fn}: options.responseLengths[${i}] must be an integer >= 0, got ${String(v)}.`,
        );
      }
    });
  }
}

function inputsFor(
  kind: RewardInputKind,
  prompts: RewardInputs,
  responses: RewardInputs,
  tokenizer: RewardTokenizer | undefined,
  name: string,
): { prompts: readonly (string | TokenIds)[]; responses: readonly (string | TokenIds)[]; size: number } {
  const fn = `reward function "${name}"`;
  const resolved = resolveInputs(prompts, responses, fn);
  const converted = kind === 'text' ? asText(resolved, tokenizer, fn) : asTokens(resolved, tokenizer, fn);
  return { ...converted, size: resolved.size };
}

/**
 * Wraps a per-row scorer `(prompt, response, info) => number | Promise<number>` (e.g. an AFINN or VADER
 * labeler) as a {@link RewardFunction}. Rows are scored concurrently (`Promise.all`), results in row order.
 */
export function rewardFunction(
  fn: (prompt: string, response: string, info: RowInfo) => number | Promise<number>,
  options?: ProgrammaticRewardOptions & { inputKind?: 'text' },
): RewardFunction;
export function rewardFunction(
  fn: (prompt: TokenIds, response: TokenIds, info: RowInfo) => number | Promise<number>,
  options: ProgrammaticRewardOptions & { inputKind: 'tokens' },
): RewardFunction;
export function rewardFunction(
  fn: (prompt: never, response: never, info: RowInfo) => number | Promise<number>,
  options: ProgrammaticRewardOptions = {},
): RewardFunction {
  if (typeof fn !== 'function') {
    throw new TypeError(
      `rewardFunction: fn must be a function (prompt, response) => number, got ${typeof fn}.`,
    );
  }
  const kind = validKind(options.inputKind, 'rewardFunction');
  const name = options.name ?? (fn.name || 'reward');
  const call = fn as unknown as (
    p: string | TokenIds,
    r: string | TokenIds,
    info: RowInfo,
  ) => number | Promise<number>;
  return {
    name,
    inputKind: kind,
    async score(prompts, responses, scoreOptions) {
      const rows = inputsFor(kind, prompts, responses, options.tokenizer, name);
      checkScoreOptions(scoreOptions, rows.size, `reward function "${name}"`);
      const values = await Promise.all(
        rows.prompts.map((p, i) => {
          const info: RowInfo = { index: i };
          const eos = scoreOptions?.endedWithEos?.[i];
          const len = scoreOptions?.responseLengths?.[i];
          if (eos !== undefined) info.endedWithEos = eos;
          if (len !== undefined) info.responseLength = len;
          return call(p, rows.responses[i]!, info);
        }),
      );
      return checkScores(values, rows.size, name);
    },
  };
}

/**
 * Wraps a batch scorer `(prompts, responses, options) => ArrayLike<number> | Promise<...>` (e.g. a model
 * served elsewhere, or a vectorised labeler) as a {@link RewardFunction}.
 */
export function batchRewardFunction(
  fn: (
    prompts: string[],
    responses: string[],
    options: ScoreOptions,
  ) => ArrayLike<number> | Promise<ArrayLike<number>>,
  options?: ProgrammaticRewardOptions & { inputKind?: 'text' },
): RewardFunction;
export function batchRewardFunction(
  fn: (
    prompts: TokenIds[],
    responses: TokenIds[],
    options: ScoreOptions,
  ) => ArrayLike<number> | Promise<ArrayLike<number>>,
  options: ProgrammaticRewardOptions & { inputKind: 'tokens' },
): RewardFunction;
export function batchRewardFunction(
  fn: (
    prompts: never[],
    responses: never[],
    options: ScoreOptions,
  ) => ArrayLike<number> | Promise<ArrayLike<number>>,
  options: ProgrammaticRewardOptions = {},
): RewardFunction {
  if (typeof fn !== 'function') {
    throw new TypeError(
      `batchRewardFunction: fn must be a function (prompts, responses) => number[], got ${typeof fn}.`,
    );
  }
  const kind = validKind(options.inputKind, 'batchRewardFunction');
  const name = options.name ?? (fn.name || 'reward');
  const call = fn as unknown as (
    p: (string | TokenIds)[],
    r: (string | TokenIds)[],
    o: ScoreOptions,
  ) => ArrayLike<number> | Promise<ArrayLike<number>>;
  return {
    name,
    inputKind: kind,
    async score(prompts, responses, scoreOptions = {}) {
      const rows = inputsFor(kind, prompts, responses, options.tokenizer, name);
      checkScoreOptions(scoreOptions, rows.size, `reward function "${name}"`);
      if (rows.size === 0) return new Float32Array(0);
      const values = await call([...rows.prompts], [...rows.responses], scoreOptions);
      return checkScores(values, rows.size, name);
    },
  };
}

function validKind(kind: unknown, fn: string): RewardInputKind {
  if (kind === undefined) return 'text';
  if (kind !== 'text' && kind !== 'tokens') {
    throw new Error(`${fn}: inputKind must be 'text' or 'tokens', got ${JSON.stringify(kind)}.`);
  }
  return kind;
}
