/**
 * The inputs every reward function takes: a batch of prompts and responses, given either as text or as
 * token ids, and the conversions between the two (a learned reward model scores token ids; a text labeler
 * such as AFINN needs strings).
 */

/** One token sequence: a plain array or an `Int32Array` of token ids. */
export type TokenIds = readonly number[] | Int32Array;

/** A batch of texts or of token sequences (all rows of one kind). */
export type RewardInputs = readonly string[] | readonly TokenIds[];

/** What a reward function works on natively. */
export type RewardInputKind = 'text' | 'tokens';

/**
 * The tokenizer a reward function uses to convert between kinds (`BpeTokenizer` of `@relign/lm` fits).
 * `encode` is needed to turn text into tokens, `decode` to turn tokens into text.
 */
export interface RewardTokenizer {
  encode(text: string): number[];
  decode?(ids: ArrayLike<number>): string;
  readonly eosId: number;
}

/** A validated batch: the rows, their kind, and the batch size. */
export type ResolvedInputs =
  | { kind: 'text'; prompts: readonly string[]; responses: readonly string[]; size: number }
  | { kind: 'tokens'; prompts: readonly TokenIds[]; responses: readonly TokenIds[]; size: number };

function kindOf(rows: readonly unknown[], name: string, fn: string): RewardInputKind | undefined {
  if (!Array.isArray(rows)) {
    throw new TypeError(
      `${fn}: ${name} must be an array of strings or of token-id arrays, got ${rows === null ? 'null' : typeof rows}.`,
    );
  }
  let kind: RewardInputKind | undefined;
  rows.forEach((row, i) => {
    const k: RewardInputKind | undefined =
      typeof row === 'string'
        ? 'text'
        : Array.isArray(row) || row instanceof Int32Array
          ? 'tokens'
          : undefined;
    if (k === undefined) {
      throw new TypeError(
        `${fn}: ${name}[${i}] must be a string or an array of token ids, got ${row === null ? 'null' : typeof row}.`,
      );
    }
    if (kind !== undefined && k !== kind) {
      throw new TypeError(
        `${fn}: ${name} mixes strings and token arrays (row ${i} is ${k}, earlier rows are ${kind}); use one kind.`,
      );
    }
    kind = k;
    if (k === 'tokens') {
      const ids = row as ArrayLike<unknown>;
      for (let t = 0; t < ids.length; t++) {
        const v = ids[t];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
          throw new TypeError(
            `${fn}: ${name}[${i}][${t}] must be a token id (integer >= 0), got ${String(v)}.`,
          );
        }
      }
    }
  });
  return kind;
}

/**
 * Checks a batch: equal lengths, every row a string or every row a token array (the same kind for
 * prompts and responses).
 *
 * @throws TypeError / Error naming the argument and row.
 */
export function resolveInputs(prompts: RewardInputs, responses: RewardInputs, fn: string): ResolvedInputs {
  const pk = kindOf(prompts as readonly unknown[], 'prompts', fn);
  const rk = kindOf(responses as readonly unknown[], 'responses', fn);
  if (prompts.length !== responses.length) {
    throw new Error(
      `${fn}: prompts has ${prompts.length} rows but responses has ${responses.length}; pass one prompt per response.`,
    );
  }
  if (pk !== undefined && rk !== undefined && pk !== rk) {
    throw new TypeError(
      `${fn}: prompts are ${pk} but responses are ${rk}; pass both as strings or both as token arrays.`,
    );
  }
  const kind = pk ?? rk ?? 'text';
  return kind === 'text'
    ? {
        kind,
        prompts: prompts as readonly string[],
        responses: responses as readonly string[],
        size: prompts.length,
      }
    : {
        kind,
        prompts: prompts as readonly TokenIds[],
        responses: responses as readonly TokenIds[],
        size: prompts.length,
      };
}

/** The batch as text, decoding token rows with `tokenizer.decode`. */
export function asText(
  inputs: ResolvedInputs,
  tokenizer: RewardTokenizer | undefined,
  fn: string,
): { prompts: readonly string[]; responses: readonly string[] } {
  if (inputs.kind === 'text') return inputs;
  const decode = tokenizer?.decode?.bind(tokenizer);
  if (decode === undefined) {
    throw new Error(
      `${fn}: this reward function scores text but was given token ids; create it with a tokenizer that has ` +
        'decode() (e.g. { tokenizer: bpeTokenizer }), or pass strings.',
    );
  }
  return { prompts: inputs.prompts.map((p) => decode(p)), responses: inputs.responses.map((r) => decode(r)) };
}

/** The batch as token ids, encoding text rows with `tokenizer.encode` (no EOS is added here). */
export function asTokens(
  inputs: ResolvedInputs,
  tokenizer: RewardTokenizer | undefined,
  fn: string,
): { prompts: readonly TokenIds[]; responses: readonly TokenIds[] } {
  if (inputs.kind === 'tokens') return inputs;
  if (tokenizer === undefined) {
    throw new Error(
      `${fn}: this reward function scores token ids but was given strings; give it a tokenizer ` +
        '(e.g. { tokenizer: bpeTokenizer }), or pass token arrays.',
    );
  }
  return {
    prompts: inputs.prompts.map((p) => tokenizer.encode(p)),
    responses: inputs.responses.map((r) => tokenizer.encode(r)),
  };
}
