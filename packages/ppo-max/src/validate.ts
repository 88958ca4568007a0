/**
 * Input checks of the pure PPO functions. Every error names the function, the argument and the fix, so a
 * caller can correct the call without reading the implementation.
 */
import * as tf from '@tensorflow/tfjs-core';

/** A short description of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value instanceof tf.Tensor) return `a ${value.dtype} tensor of shape [${value.shape.join(', ')}]`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return typeof value;
}

/** Throws unless `input` is an object (the first argument of the pure functions). */
export function checkInputObject(
  input: unknown,
  fields: readonly string[],
  fn: string,
): Record<string, unknown> {
  if (input === null || typeof input !== 'object' || input instanceof tf.Tensor) {
    throw new TypeError(
      `${fn}: the first argument must be an object { ${fields.join(', ')} }, got ${describeValue(input)}.`,
    );
  }
  return input as Record<string, unknown>;
}

/**
 * Checks that `input[field]` is a live tensor of rank `rank`; float32 unless `anyDtype` (masks may be bool,
 * int32 or float32); and, when `shape` is given, exactly that shape. Returns the tensor.
 */
export function checkTensor(
  input: Record<string, unknown>,
  field: string,
  fn: string,
  {
    rank,
    layout,
    shape,
    anyDtype = false,
  }: { rank: number; layout: string; shape?: readonly number[]; anyDtype?: boolean },
): tf.Tensor {
  const t = input[field];
  if (!(t instanceof tf.Tensor)) {
    throw new TypeError(`${fn}: \`${field}\` must be a tf.Tensor ${layout}, got ${describeValue(t)}.`);
  }
  if (t.isDisposed) throw new Error(`${fn}: \`${field}\` has been disposed; pass a live tensor.`);
  if (t.rank !== rank) {
    throw new Error(
      `${fn}: \`${field}\` must have rank ${rank} ${layout}, got shape [${t.shape.join(', ')}].`,
    );
  }
  if (!anyDtype && t.dtype !== 'float32') {
    throw new Error(
      `${fn}: \`${field}\` must be float32, got ${t.dtype}; cast it with tf.cast(x, 'float32').`,
    );
  }
  if (shape && !tf.util.arraysEqual(t.shape, shape as number[])) {
    throw new Error(
      `${fn}: \`${field}\` must have shape [${shape.join(', ')}] ${layout}, got [${t.shape.join(', ')}].`,
    );
  }
  return t;
}

/** Throws unless `options` is an object (or undefined, then `{}`), with no keys outside `known`. */
export function checkOptions(
  options: unknown,
  known: readonly string[],
  fn: string,
): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(
      `${fn}: \`options\` must be an object { ${known.join(', ')} }, got ${describeValue(options)}.`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key))
      throw new Error(`${fn}: unknown option \`options.${key}\`; the options are ${known.join(', ')}.`);
  }
  return options as Record<string, unknown>;
}

/** Throws unless `value` is a finite number satisfying `ok` (`rule` says which, e.g. 'in [0, 1]'). */
export function checkNumber(
  value: unknown,
  name: string,
  fn: string,
  ok: (v: number) => boolean,
  rule: string,
): number {
  if (typeof value !== 'number' || Number.isNaN(value) || !ok(value)) {
    throw new Error(`${fn}: \`${name}\` must be a number ${rule}, got ${describeValue(value)}.`);
  }
  return value;
}

/** `mask != 0` as bool (a bool mask is used as is). */
export function maskBool(mask: tf.Tensor): tf.Tensor {
  return mask.dtype === 'bool' ? mask : tf.notEqual(mask, tf.scalar(0, mask.dtype));
}

/** `values` where `cond`, else 0: a select, so NaN/Inf at masked positions never reach a sum or a gradient. */
export function select(cond: tf.Tensor, values: tf.Tensor): tf.Tensor {
  return tf.where(cond, values, tf.zerosLike(values));
}
