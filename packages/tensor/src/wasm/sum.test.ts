import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { activate, on, relErr, seeded } from './test-helpers.js';

describe('wasm Sum over leading / middle axes', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('equals cpu for every axis set of a rank-4 tensor, with and without keepDims', async () => {
    const shape = [3, 5, 1, 7];
    const x = await seeded(shape, 1);
    const axisSets: (number | number[] | null)[] = [
      0,
      1,
      2,
      3,
      -1,
      [0, 1],
      [1, 2],
      [0, 2],
      [0, 3],
      [1, 3],
      [0, 1, 2],
      [1, 2, 3],
      null,
    ];
    for (const keepDims of [false, true]) {
      const f = () => axisSets.map((axis) => tf.sum(tf.tensor(x, shape), axis as number[], keepDims));
      const want = await on('cpu', f);
      const got = await on('wasm', f);
      want.forEach((w, i) =>
        expect(relErr(got[i]!, w), `axis ${JSON.stringify(axisSets[i])} keepDims=${keepDims}`).toBeLessThan(
          1e-5,
        ),
      );
      await activate('wasm');
      const shapes = tf.tidy(() =>
        axisSets.map((axis) => tf.sum(tf.tensor(x, shape), axis as number[], keepDims).shape),
      );
      await activate('cpu');
      const cpuShapes = tf.tidy(() =>
        axisSets.map((axis) => tf.sum(tf.tensor(x, shape), axis as number[], keepDims).shape),
      );
      expect(shapes).toEqual(cpuShapes);
    }
  });

  it('column sums of large matrices equal cpu (float32 and int32)', async () => {
    const x = await seeded([1024, 130], 2);
    const f = () => [tf.sum(tf.tensor(x, [1024, 130]), 0), tf.sum(tf.tensor(x, [8, 128, 130]), 1)];
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    want.forEach((w, i) => expect(relErr(got[i]!, w), `case ${i}`).toBeLessThan(1e-4));
    await activate('wasm');
    const xi = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], [3, 5], 'int32');
    const si = tf.sum(xi, 0);
    expect(si.dtype).toBe('int32');
    expect(Array.from(si.dataSync())).toEqual([18, 21, 24, 27, 30]);
    const sb = tf.sum(tf.tensor2d([true, false, true, true], [2, 2], 'bool'), 0);
    expect(Array.from(sb.dataSync())).toEqual([2, 1]);
    tf.dispose([xi, si, sb]);
  });

  it('bias gradients equal cpu; nothing leaks', async () => {
    const x = await seeded([64, 48], 3);
    const b = await seeded([48], 4);
    const f = () =>
      tf.grad((bias: tf.Tensor) => tf.sum(tf.square(tf.add(tf.tensor(x, [64, 48]), bias))))(
        tf.tensor(b, [48]),
      );
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    expect(relErr(got, want)).toBeLessThan(1e-4);
    await activate('wasm');
    const t = tf.tensor(x, [64, 48]);
    await assertNoLeaks(() => tf.sum(t, 0), { label: 'sum axis 0' });
    await assertNoLeaks(() => tf.sum(t, 0, true), { label: 'sum axis 0 keepDims' });
    t.dispose();
  });
});
