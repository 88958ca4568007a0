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

/**
 * Per-row metadata that some reward functions need (the rollout knows it; text alone does not say it). `R` is
 * the type of the prompt records (see `records`).
 */
export interface ScoreOptions<R = unknown> {
  /**
   * `[B]`: whether each response ended with the EOS token (false: generation was cut at the length limit).
   * Needed by {@link missingEosPenalty}; a learned reward model given text appends EOS only where this is
   * not false.
   */
  endedWithEos?: readonly boolean[];
  /** `[B]`: response lengths in tokens (EOS included when present). Used by {@link lengthPenalty}. */
  responseLengths?: readonly number[];
  /**
   * `[B]`: the record of each row's prompt (the responses of one prompt share it), e.g.
   * `{ prompt: '2+3=', answer: '5' }`: the Trainer passes the prompt records it was given (TRL passes the
   * dataset's columns to reward functions), so a checkable reward reads the answer, the unit tests, ... of
   * its row. Given to per-row functions as `info.record`.
   */
  records?: readonly R[];
}

/**
 * Something that scores a batch of (prompt, response) rows.
 *
 * Inputs are either all strings or all token-id arrays (`prompts[i]` pairs with `responses[i]`). A function
 * works natively on one kind (`inputKind`); it converts the other kind with the tokenizer it was created
 * with, or throws an error saying that a tokenizer is needed. Token responses are scored as given (a
 * rollout's response already holds its EOS when it has one).
 *
 * Every implementation resolves to `B` finite scores, a `Float64Array` (the built-in functions: the numbers
 * as computed, so a difference of two scores is exact, docs/algorithms.md §1.10) or a `Float32Array`; a NaN or infinite
 * score is an error naming the function and the row (never silently passed on to training).
 */
// `R` defaults to `any` so that a plain `RewardFunction` (weightedSum terms, the Trainer's internals) takes a
// function typed for any record; `score` is a property (not a method) so that its parameter is checked
// contravariantly: a function that reads `record.answer` is refused for prompts without an `answer`.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface RewardFunction<R = any> {
  /** A short name for logs and error messages. */
  readonly name: string;
  /** The kind the function works on natively; `'any'` when it takes both without conversion. */
  readonly inputKind: RewardInputKind | 'any';
  /** @returns `[B]` scores, higher = better. */
  readonly score: (
    prompts: RewardInputs,
    responses: RewardInputs,
    options?: ScoreOptions<R>,
  ) => Promise<Float64Array | Float32Array>;
}

/** What a per-row function receives besides the prompt and response; `R` is the prompt records' type. */
export interface RowInfo<R = unknown> {
  /** Row index in the batch. */
  index: number;
  /** `options.endedWithEos[index]`, when given. */
  endedWithEos?: boolean;
  /** `options.responseLengths[index]`, when given. */
  responseLength?: number;
  /**
   * The record of the row's prompt (`options.records[index]`): always given by the Trainer (`{ prompt }` for
   * prompts given without a record), absent when the caller passes no records.
   */
  record?: R;
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
 * Checks and copies scores: exactly `size` finite numbers (also after rounding to float32, as training uses
 * them), kept in float64 so that score differences are those of the numbers given.
 *
 * @throws Error naming `name`, the first bad row and its value, and how many rows are bad.
 */
export function checkScores(values: ArrayLike<number>, size: number, name: string): Float64Array {
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
  const out = new Float64Array(size);
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
    if (!Number.isFinite(Math.fround(v))) {
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
export function checkScoreOptions(
  options: ScoreOptions<unknown> | undefined,
  size: number,
  fn: string,
): void {
  if (options === undefined) return;
  const { endedWithEos, responseLengths, records } = options;
  if (records !== undefined && (!Array.isArray(records) || records.length !== size)) {
    throw new Error(`${fn}: options.records must be an array of ${size} prompt records (one per row).`);
  }
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
 * `info.record` is the row's prompt record; type it with `R` for a checkable reward:
 *
 * ```ts
 * const exact = rewardFunction<{ prompt: string; answer: string }>((_p, response, { record }) =>
 *   response.trim() === record?.answer ? 1 : 0,
 * );
 * ```
 */
export function rewardFunction<R = unknown>(
  fn: (prompt: string, response: string, info: RowInfo<R>) => number | Promise<number>,
  options?: ProgrammaticRewardOptions & { inputKind?: 'text' },
): RewardFunction<R>;
export function rewardFunction<R = unknown>(
  fn: (prompt: TokenIds, response: TokenIds, info: RowInfo<R>) => number | Promise<number>,
  options: ProgrammaticRewardOptions & { inputKind: 'tokens' },
): RewardFunction<R>;
export function rewardFunction(
  fn: (prompt: never, response: never, info: RowInfo<unknown>) => number | Promise<number>,
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
    info: RowInfo<unknown>,
  ) => number | Promise<number>;
  return {
    name,
    inputKind: kind,
    async score(prompts, responses, scoreOptions) {
      const rows = inputsFor(kind, prompts, responses, options.tokenizer, name);
      checkScoreOptions(scoreOptions, rows.size, `reward function "${name}"`);
      const values = await Promise.all(
        rows.prompts.map((p, i) => {
          const info: RowInfo<unknown> = { index: i };
          const eos = scoreOptions?.endedWithEos?.[i];
          const len = scoreOptions?.responseLengths?.[i];
          if (eos !== undefined) info.endedWithEos = eos;
          if (len !== undefined) info.responseLength = len;
          if (scoreOptions?.records) info.record = scoreOptions.records[i];
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
export function batchRewardFunction<R = unknown>(
  fn: (
    prompts: string[],
    responses: string[],
    options: ScoreOptions<R>,
  ) => ArrayLike<number> | Promise<ArrayLike<number>>,
  options?: ProgrammaticRewardOptions & { inputKind?: 'text' },
): RewardFunction<R>;
export function batchRewardFunction<R = unknown>(
  fn: (
    prompts: TokenIds[],
    responses: TokenIds[],
    options: ScoreOptions<R>,
  ) => ArrayLike<number> | Promise<ArrayLike<number>>,
  options: ProgrammaticRewardOptions & { inputKind: 'tokens' },
): RewardFunction<R>;
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
      if (rows.size === 0) return new Float64Array(0);
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
