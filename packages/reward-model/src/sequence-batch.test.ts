import * as tf from '@tensorflow/tfjs-core';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeSequenceTensors, packSequences, selectLast, sequenceTensors } from './sequence-batch.js';

describe('packSequences', () => {
  it('pads right or left and locates the last real token from the lengths, not the ids', () => {
    const rows = [[5, 0], [7, 8, 9, 0], [0]];
    const right = packSequences(rows, { padId: 0 });
    expect(Array.from(right.inputIds)).toEqual([5, 0, 0, 0, 7, 8, 9, 0, 0, 0, 0, 0]);
    expect(Array.from(right.attentionMask)).toEqual([1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0]);
    expect(Array.from(right.lastIndex)).toEqual([1, 3, 0]);
    const left = packSequences(rows, { padId: 3, padding: 'left', padTo: 5 });
    expect(Array.from(left.inputIds)).toEqual([3, 3, 3, 5, 0, 3, 7, 8, 9, 0, 3, 3, 3, 3, 0]);
    expect(Array.from(left.attentionMask)).toEqual([0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1]);
    expect(Array.from(left.lastIndex)).toEqual([4, 4, 4]);
    expect(Array.from(left.lengths)).toEqual([2, 4, 1]);
  });

  it('rejects empty input, empty rows and a short padTo', () => {
    expect(() => packSequences([])).toThrow(/no sequences/);
    expect(() => packSequences([[1], []])).toThrow(/row 1 is empty/);
    expect(() => packSequences([[1, 2, 3]], { padTo: 2 })).toThrow(
      /padTo \(2\) is shorter than the longest row \(3\)/,
    );
    expect(() => packSequences([[1]], { padding: 'middle' as 'left' })).toThrow(
      /padding must be 'left' or 'right'/,
    );
  });
});

describe.each(TEST_BACKENDS)('selectLast on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('picks each row at its last real token, with gradient only there', () => {
    const t = sequenceTensors(
      packSequences(
        [
          [1, 2],
          [3, 4, 5],
        ],
        { padding: 'right' },
      ),
    );
    const values = tf.tensor2d([
      [10, 11, 12],
      [20, 21, 22],
    ]);
    const { value, grads } = tf.valueAndGrads((v: tf.Tensor) =>
      tf.sum(selectLast(v as tf.Tensor2D, t.lastOneHot)),
    )([values]);
    expect(value.dataSync()[0]).toBe(11 + 22);
    expect(Array.from(grads[0]!.dataSync())).toEqual([0, 1, 0, 0, 0, 1]);
    const picked = selectLast(values, t.lastOneHot);
    expect(Array.from(picked.dataSync())).toEqual([11, 22]);
    const wrong = tf.zeros([2, 2]) as tf.Tensor2D;
    expect(() => selectLast(wrong, t.lastOneHot)).toThrow(/same shape/);
    tf.dispose([values, value, picked, wrong, ...grads]);
    disposeSequenceTensors(t);
  });
});
