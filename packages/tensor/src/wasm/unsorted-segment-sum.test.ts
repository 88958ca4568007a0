import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { activate, on, relErr, seeded } from './test-helpers.js';

const TOL = 1e-4;

/** Seeded ids in [lo, hi), with repeats. */
function ids(count: number, lo: number, hi: number, seed: number): Int32Array {
  let s = seed >>> 0 || 1;
  return Int32Array.from({ length: count }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo));
  });
}

describe('wasm UnsortedSegmentSum', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('gradient of tf.gather (repeated indices) equals cpu', async () => {
    for (const [vocab, dim, count, seed] of [
      [11, 8, 40, 1],
      [50, 13, 64, 2],
      [7, 1, 30, 3],
      [30, 128, 96, 4],
    ] as const) {
      const params = await seeded([vocab, dim], seed);
      const w = await seeded([count, dim], seed + 100);
      const index = ids(count, 0, vocab, seed);
      const f = () => {
        const g = tf.grad((p: tf.Tensor) =>
          tf.sum(tf.mul(tf.gather(p, tf.tensor1d(index, 'int32')), tf.tensor(w, [count, dim]))),
        );
        return g(tf.tensor(params, [vocab, dim]));
      };
      const want = await on('cpu', f);
      const got = await on('wasm', f);
      expect(relErr(got, want), `V=${vocab} D=${dim} n=${count}`).toBeLessThan(TOL);
    }
  });

  it('gradient of a gather with 2-D indices and of a gather on axis 1 equals cpu', async () => {
    const params = await seeded([9, 6, 4], 5);
    const index = ids(3 * 5, 0, 9, 6);
    const index1 = ids(7, 0, 6, 7);
    const f = () => {
      const p = tf.tensor(params, [9, 6, 4]);
      const g2d = tf.grad((x: tf.Tensor) =>
        tf.sum(tf.square(tf.gather(x, tf.tensor2d(index, [3, 5], 'int32')))),
      )(p);
      const gAxis1 = tf.grad((x: tf.Tensor) =>
        tf.sum(tf.square(tf.gather(x, tf.tensor1d(index1, 'int32'), 1))),
      )(p);
      return [g2d, gAxis1];
    };
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    want.forEach((wv, i) => expect(relErr(got[i]!, wv), `case ${i}`).toBeLessThan(TOL));
  });

  it('forward equals cpu: trailing shapes, out-of-range ids dropped', async () => {
    const x = await seeded([10, 3, 5], 9);
    const idsWithJunk = Int32Array.from([0, 3, -1, 3, 7, 2, 9, 0, 12, 3]); // -1, 9 and 12 are out of range
    const f = () => [
      tf.unsortedSegmentSum(tf.tensor(x, [10, 3, 5]), tf.tensor1d(idsWithJunk, 'int32'), 8),
      tf.unsortedSegmentSum(tf.tensor(x, [10, 15]), tf.tensor1d(idsWithJunk, 'int32'), 9),
      tf.unsortedSegmentSum(tf.tensor(x, [150]), tf.tensor1d(ids(150, 0, 6, 11), 'int32'), 6),
    ];
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    want.forEach((wv, i) => expect(relErr(got[i]!, wv), `case ${i}`).toBeLessThan(TOL));
  });

  it('rejects segment ids that are not one per row of x; takes numSegments = 0', async () => {
    await activate('wasm');
    const x = tf.ones([4, 3]);
    const ids2d = tf.tensor2d([0, 1, 0, 1], [2, 2], 'int32') as unknown as tf.Tensor1D;
    const short = tf.tensor1d([0, 1, 0], 'int32');
    expect(() => tf.unsortedSegmentSum(x, ids2d, 2)).toThrow(/1-D/);
    expect(() => tf.unsortedSegmentSum(x, short, 2)).toThrow(/1-D/);
    tf.dispose([ids2d, short]);
    const empty = tf.unsortedSegmentSum(x, tf.tensor1d([0, 1, 0, 1], 'int32'), 0); // cpu cannot do this one
    expect(empty.shape).toEqual([0, 3]);
    tf.dispose([x, empty]);
  });

  it('int32 data sums exactly', async () => {
    await activate('wasm');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], [5, 3], 'int32');
    const out = tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, 5, 0], 'int32'), 4);
    expect(out.dtype).toBe('int32');
    expect(Array.from(out.dataSync())).toEqual([
      4 + 13,
      5 + 14,
      6 + 15,
      0,
      0,
      0,
      1 + 7,
      2 + 8,
      3 + 9,
      0,
      0,
      0,
    ]);
    tf.dispose([x, out]);
  });

  it('zero-fills: segments with no ids are exactly 0 even when the heap held garbage', async () => {
    await activate('wasm');
    const backend = tf.backend() as unknown as { dataIdMap: { get(d: object): { memoryOffset: number } } };
    const [segments, dim] = [64, 32];
    let reused = 0;
    for (let trial = 0; trial < 5; trial++) {
      const x = tf.ones([6, dim]);
      const segIds = tf.tensor1d([1, 5, 5, 9, 60, 1], 'int32');
      // Leave garbage (NaN) in a freed block of exactly the output's size.
      const garbage = tf.fill([segments, dim], trial % 2 ? NaN : 1e30);
      const garbageOffset = backend.dataIdMap.get(garbage.dataId)!.memoryOffset;
      garbage.dispose();
      const out = tf.unsortedSegmentSum(x, segIds, segments);
      if (backend.dataIdMap.get(out.dataId)!.memoryOffset === garbageOffset) reused++;
      const v = out.arraySync() as number[][];
      for (let s = 0; s < segments; s++) {
        const expected = s === 1 || s === 5 ? 2 : s === 9 || s === 60 ? 1 : 0;
        for (let d = 0; d < dim; d++) expect(Object.is(v[s]![d], expected), `segment ${s}`).toBe(true);
      }
      tf.dispose([x, segIds, out]);
    }
    // The allocator handed the garbage block to the output at least once, so the check was real.
    expect(reused).toBeGreaterThan(0);
  });

  it('leaks no tensors', async () => {
    await activate('wasm');
    const p = tf.randomNormal([40, 16], 0, 1, 'float32', 1);
    const index = tf.tensor1d(ids(32, 0, 40, 3), 'int32');
    await assertNoLeaks(() => tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, index)))(p), {
      label: 'gather grad',
    });
    await assertNoLeaks(
      () => tf.tidy(() => tf.unsortedSegmentSum(p, tf.tensor1d(ids(40, 0, 8, 4), 'int32'), 8)),
      {
        label: 'unsortedSegmentSum',
      },
    );
    tf.dispose([p, index]);
  });
});
