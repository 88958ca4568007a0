import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  checkNumber,
  checkObject,
  checkOptions,
  checkPositive,
  checkSameShape,
  checkTensor,
  describeValue,
} from './index.js';

describe('input checks', () => {
  it('describeValue says what was received', () => {
    const t = tf.zeros([2, 3], 'int32');
    expect(describeValue(t)).toBe('a int32 tensor of shape [2, 3]');
    expect(describeValue(null)).toBe('null');
    expect(describeValue([1, 2])).toBe('an array of length 2');
    expect(describeValue(Number.NaN)).toBe('number NaN');
    expect(describeValue('x'.repeat(50))).toBe(`string "${'x'.repeat(40)}…"`);
    expect(describeValue(undefined)).toBe('undefined');
    t.dispose();
  });

  it('checkTensor checks tensor, liveness, rank, dtype and shape, naming fn and argument', () => {
    const x = tf.zeros([2, 3]);
    expect(checkTensor(x, 'x', 'f', { rank: 2, shape: [2, 3] })).toBe(x);
    expect(() => checkTensor([1], 'x', 'f', { layout: '[B, T]' })).toThrow(
      /^f: `x` must be a tf.Tensor \[B, T\], got an array of length 1\.$/,
    );
    expect(() => checkTensor(x, 'x', 'f', { rank: 1, layout: '[B]', hint: 'sum over T first' })).toThrow(
      /^f: `x` must have rank 1 \[B\], got shape \[2, 3\]; sum over T first\.$/,
    );
    expect(() => checkTensor(x, 'x', 'f', { dtype: 'int32' })).toThrow(
      /`x` must be int32, got float32; cast it with tf.cast\(x, 'int32'\)/,
    );
    expect(() => checkTensor(x, 'x', 'f', { dtype: ['int32', 'bool'] })).toThrow(
      /`x` must be int32 or bool, got float32\.$/,
    );
    expect(checkTensor(x, 'x', 'f', { dtype: 'any' })).toBe(x);
    expect(() => checkTensor(x, 'x', 'f', { shape: [3, 2] })).toThrow(
      /`x` must have shape \[3, 2\], got \[2, 3\]/,
    );
    const i = tf.zeros([2], 'int32');
    expect(() => checkTensor(i, 'mask', 'f')).toThrow(/`mask` must be float32, got int32/); // float32 by default
    x.dispose();
    expect(() => checkTensor(x, 'x', 'f')).toThrow(/`x` has been disposed; pass a live tensor/);
    i.dispose();
  });

  it('checkSameShape reports the second tensor against the first', () => {
    tf.tidy(() => {
      checkSameShape(tf.zeros([2]), tf.ones([2]), 'a', 'b', 'f');
      expect(() => checkSameShape(tf.zeros([2]), tf.zeros([3]), 'a', 'b', 'f')).toThrow(
        /^f: `b` must have the same shape as `a`: got \[3\] vs \[2\]\.$/,
      );
    });
  });

  it('checkNumber and checkPositive reject NaN, wrong types and values outside the rule', () => {
    expect(checkNumber(0.5, 'eps', 'f', (v) => v >= 0 && v <= 1, 'in [0, 1]')).toBe(0.5);
    expect(() => checkNumber(2, 'eps', 'f', (v) => v <= 1, 'in [0, 1]')).toThrow(
      /^f: `eps` must be a number in \[0, 1\], got number 2\.$/,
    );
    expect(() => checkNumber(Number.NaN, 'eps', 'f', () => true, 'of any value')).toThrow(/got number NaN/);
    expect(() => checkNumber('1', 'eps', 'f', () => true, 'of any value')).toThrow(/got string "1"/);
    expect(checkNumber(Number.POSITIVE_INFINITY, 'c', 'f', (v) => v > 1, '> 1')).toBe(Infinity);
    expect(() =>
      checkNumber(Number.POSITIVE_INFINITY, 'c', 'f', (v) => v > 1, '> 1', { finite: true }),
    ).toThrow(/^f: `c` must be a finite number > 1, got number Infinity\.$/);
    expect(checkPositive(3, 'lr', 'f')).toBe(3);
    expect(() => checkPositive(Number.POSITIVE_INFINITY, 'lr', 'f')).toThrow(
      /`lr` must be a finite number > 0, got number Infinity/,
    );
  });

  it('checkObject and checkOptions reject non-objects and unknown keys', () => {
    expect(() => checkObject(tf.scalar(1), 'input', 'f', ['a', 'b'])).toThrow(
      /^f: `input` must be an object \{ a, b \}, got a float32 tensor of shape \[\]\.$/,
    );
    expect(checkOptions(undefined, ['eps'], 'f')).toEqual({});
    expect(checkOptions({ eps: 1 }, ['eps'], 'f')).toEqual({ eps: 1 });
    expect(() => checkOptions({ epsilon: 1 }, ['eps', 'beta'], 'f')).toThrow(
      /^f: unknown option `options.epsilon`; the options are eps, beta\.$/,
    );
    expect(() => checkOptions([], ['eps'], 'f')).toThrow(/`options` must be an object \{ eps \}/);
  });
});
