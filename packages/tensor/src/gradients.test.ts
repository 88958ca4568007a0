// Gradients and chained ops come from src/gradients.ts (tfjs-core's ESM registrations), not from
// @tensorflow/tfjs, which relign no longer depends on: every kernel the models differentiate must have one.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from './testing/index.js';
import './index.js';

// Kernels on the training paths of lm (GPT-2 forward, losses), reward-model, the optimizers' losses and
// @relign/tensor's numerics (log-softmax, entropy, masked statistics, clipping).
const KERNELS = [
  'Add',
  'AddN',
  'BatchMatMul',
  'Cast',
  'ClipByValue',
  'Concat',
  'RealDiv',
  'Erf',
  'Exp',
  'ExpandDims',
  'GatherV2',
  'Log',
  'LogSoftmax',
  'Max',
  'Maximum',
  'Mean',
  'Minimum',
  'Multiply',
  'Neg',
  'Pow',
  'Reshape',
  'Rsqrt',
  'Select',
  'Sigmoid',
  'Slice',
  'Softmax',
  'Softplus',
  'SplitV',
  'Sqrt',
  'Square',
  'SquaredDifference',
  'Sub',
  'Sum',
  'Tanh',
  'Tile',
  'Transpose',
  'UnsortedSegmentSum',
];

describe('gradient registrations without @tensorflow/tfjs', () => {
  it('registers a gradient for every kernel the models differentiate', () => {
    const missing = KERNELS.filter((k) => tf.getGradient(k) === undefined);
    expect(missing).toEqual([]);
  });

  it('registers the chained ops on tensors', () => {
    const x = tf.tensor1d([1, 2]);
    const y = x.mul(2).add(1).reshape([2, 1]);
    expect(y.shape).toEqual([2, 1]);
    tf.dispose([x, y]);
  });

  for (const backend of TEST_BACKENDS) {
    it(`takes a gradient through softplus, abs and a matmul on ${backend}`, async () => {
      await useBackend(backend);
      const x = tf.tensor2d([[1, -2, 3]]);
      const w = tf.tensor2d([[0.5], [1], [-1]]);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.matMul(tf.mul(tf.abs(v), tf.softplus(v)), w)))(x);
      const expected = [1, -2, 3].map((v, i) => {
        const sp = Math.log1p(Math.exp(v));
        const sig = 1 / (1 + Math.exp(-v));
        return (Math.sign(v) * sp + Math.abs(v) * sig) * [0.5, 1, -1][i]!;
      });
      const got = Array.from(await g.data());
      got.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
      tf.dispose([x, w, g]);
    });
  }
});
