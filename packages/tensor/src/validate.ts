/**
 * Input checks for relign's public functions, shared by every package (tensor's numerics, core's pair
 * machinery, the algorithm plugins). Each throws an Error that names the calling function (`fn`), the argument,
 * what was expected and what was received, so a caller can fix the call without reading the implementation.
 *
 * Conventions: `name` is the argument as the caller wrote it (`logits`, `input.reward[1]`, `options.eps`); `fn`
 * is the public function that was called (`p3oV2Loss`, `RunningMoments.update`).
 */
import * as tf from '@tensorflow/tfjs-core';

/** A short description of any value for error messages: `a float32 tensor of shape [2, 3]`, `number NaN`, … */
export function describeValue(value: unknown): string {
  if (value instanceof tf.Tensor) return `a ${value.dtype} tensor of shape [${value.shape.join(', ')}]`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return typeof value;
}

/** What {@link checkTensor} requires beyond "a live tf.Tensor". */
export interface TensorCheck {
  /** Required rank. */
  rank?: number;
  /** The axes, for messages, e.g. `'[B, T, V]'`; may carry a short reason: `'[B] (one value per pair)'`. */
  layout?: string;
  /**
   * Allowed dtype(s); default `'float32'` (relign's statistics and log-probs are float32 only). `'any'` allows
   * every dtype (e.g. masks, which may be bool, int32 or float32).
   */
  dtype?: tf.DataType | readonly tf.DataType[] | 'any';
  /** Exact shape, when known (e.g. `[B, T]` of another input). */
  shape?: readonly number[];
  /** Appended to the rank and shape errors: how to produce the right input (e.g. 'sum over tokens first'). */
  hint?: string;
}

/**
 * Throws unless `value` is a live (not disposed) tf.Tensor of the required rank, dtype (float32 by default) and
 * shape, checked in that order. Returns the tensor.
 */
export function checkTensor(
  value: unknown,
  name: string,
  fn: string,
  { rank, layout, dtype = 'float32', shape, hint }: TensorCheck = {},
): tf.Tensor {
  const axes = layout ? ` ${layout}` : '';
  const fix = hint ? `; ${hint}` : '';
  if (!(value instanceof tf.Tensor)) {
    throw new TypeError(`${fn}: \`${name}\` must be a tf.Tensor${axes}, got ${describeValue(value)}.`);
  }
  if (value.isDisposed) throw new Error(`${fn}: \`${name}\` has been disposed; pass a live tensor.`);
  if (rank !== undefined && value.rank !== rank) {
    throw new Error(
      `${fn}: \`${name}\` must have rank ${rank}${axes}, got shape [${value.shape.join(', ')}]${fix}.`,
    );
  }
  if (dtype !== 'any') {
    const allowed: readonly tf.DataType[] = typeof dtype === 'string' ? [dtype] : dtype;
    if (!allowed.includes(value.dtype)) {
      const cast = allowed.length === 1 ? `; cast it with tf.cast(x, '${allowed[0]}')` : '';
      throw new Error(`${fn}: \`${name}\` must be ${allowed.join(' or ')}, got ${value.dtype}${cast}.`);
    }
  }
  if (shape && !tf.util.arraysEqual(value.shape, shape as number[])) {
    throw new Error(
      `${fn}: \`${name}\` must have shape [${shape.join(', ')}]${axes}, got [${value.shape.join(', ')}]${fix}.`,
    );
  }
  return value;
}

/** Throws unless tensors `a` and `b` have exactly the same shape (`b` is the one reported as wrong). */
export function checkSameShape(a: tf.Tensor, b: tf.Tensor, nameA: string, nameB: string, fn: string): void {
  if (!tf.util.arraysEqual(a.shape, b.shape)) {
    throw new Error(
      `${fn}: \`${nameB}\` must have the same shape as \`${nameA}\`: got [${b.shape.join(', ')}] vs ` +
        `[${a.shape.join(', ')}].`,
    );
  }
}

/**
 * Throws unless `value` is a number (not NaN) for which `ok` holds; `rule` says which, for the message (e.g.
 * `'in [0, 1]'`, `'>= 0 (the KL coefficient β)'`). ±Infinity reaches `ok` unless `finite` is set (then the
 * message asks for "a finite number"). Returns the number.
 */
export function checkNumber(
  value: unknown,
  name: string,
  fn: string,
  ok: (v: number) => boolean,
  rule: string,
  { finite = false }: { finite?: boolean } = {},
): number {
  const isNumber = typeof value === 'number' && (finite ? Number.isFinite(value) : !Number.isNaN(value));
  if (!isNumber || !ok(value)) {
    const what = finite ? 'a finite number' : 'a number';
    throw new Error(`${fn}: \`${name}\` must be ${what} ${rule}, got ${describeValue(value)}.`);
  }
  return value;
}

/** Throws unless `value` is a finite number > 0. Returns it. */
export function checkPositive(value: unknown, name: string, fn: string): number {
  return checkNumber(value, name, fn, (v) => v > 0, '> 0', { finite: true });
}

/**
 * Throws unless `value` is a plain object (not null, an array or a tensor), e.g. the input record of a loss;
 * `fields` lists what it should hold, for the message. Returns it as a record.
 */
export function checkObject(
  value: unknown,
  name: string,
  fn: string,
  fields: readonly string[],
): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof tf.Tensor) {
    throw new TypeError(
      `${fn}: \`${name}\` must be an object { ${fields.join(', ')} }, got ${describeValue(value)}.`,
    );
  }
  return value as Record<string, unknown>;
}

/**
 * Checks an options object: `undefined` gives `{}`; anything else must be an object whose keys are all in
 * `known` (so a typo such as `kl_coef` is an error, not a silently ignored option). Returns it as a record.
 */
export function checkOptions(
  options: unknown,
  known: readonly string[],
  fn: string,
): Record<string, unknown> {
  if (options === undefined) return {};
  const rec = checkObject(options, 'options', fn, known);
  for (const key of Object.keys(rec)) {
    if (!known.includes(key))
      throw new Error(`${fn}: unknown option \`options.${key}\`; the options are ${known.join(', ')}.`);
  }
  return rec;
}
