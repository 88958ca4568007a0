/**
 * Input checks shared by the numerics functions. Each throws an Error that names the argument, what
 * was expected and what was received, so a caller can fix the call without reading this code.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Throws unless `value` is a tf.Tensor. */
export function assertTensor(value: unknown, name: string, fn: string): asserts value is tf.Tensor {
  if (!(value instanceof tf.Tensor)) {
    throw new TypeError(`${fn}: \`${name}\` must be a tf.Tensor, got ${describe(value)}.`);
  }
  if (value.isDisposed) {
    throw new Error(`${fn}: \`${name}\` has been disposed; pass a live tensor.`);
  }
}

/** Throws unless `t` has rank `rank`; `layout` names the axes for the message (e.g. '[B, T, V]'). */
export function assertRank(t: tf.Tensor, rank: number, name: string, fn: string, layout: string): void {
  if (t.rank !== rank) {
    throw new Error(
      `${fn}: \`${name}\` must have rank ${rank} ${layout}, got shape [${t.shape.join(', ')}].`,
    );
  }
}

/** Throws unless `t` is float32 (log-probs and statistics are computed in float32 only). */
export function assertFloat(t: tf.Tensor, name: string, fn: string): void {
  if (t.dtype !== 'float32') {
    throw new Error(
      `${fn}: \`${name}\` must be float32, got ${t.dtype}; cast it with tf.cast(x, 'float32').`,
    );
  }
}

/** Throws unless both tensors have exactly the same shape. */
export function assertSameShape(a: tf.Tensor, b: tf.Tensor, nameA: string, nameB: string, fn: string): void {
  if (!tf.util.arraysEqual(a.shape, b.shape)) {
    throw new Error(
      `${fn}: \`${nameB}\` must have the same shape as \`${nameA}\`: got [${b.shape.join(', ')}] vs ` +
        `[${a.shape.join(', ')}].`,
    );
  }
}

/** Throws unless `value` is a finite number > 0. */
export function assertPositive(value: unknown, name: string, fn: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${fn}: \`${name}\` must be a finite number > 0, got ${describe(value)}.`);
  }
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value instanceof tf.Tensor) return `a ${value.dtype} tensor of shape [${value.shape.join(', ')}]`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return typeof value;
}
