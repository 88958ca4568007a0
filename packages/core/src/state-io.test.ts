import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@relign/tensor/testing';
import { deserializePluginState, disposePluginState, serializePluginState } from './state-io.js';

describe('plugin state serialisation', () => {
  beforeAll(() => useBackend('cpu'));

  it('round-trips JSON and float32/int32/bool tensors bit for bit', async () => {
    const tensors = new Map<string, tf.Tensor>([
      [
        'm.w',
        tf.tensor2d([
          [1.5, -0],
          [Math.PI, 1e-30],
        ]),
      ],
      ['step', tf.scalar(7, 'int32')],
      ['mask', tf.tensor1d([true, false, true], 'bool')],
    ]);
    const json = { step: 3, rng: { algorithm: 'x', s: [1, 2, 3, 4] }, nested: { a: [1, null, 'b'] } };
    const bytes = await serializePluginState({ json, tensors }, 'demo');
    const back = deserializePluginState(bytes);
    expect(back.json).toEqual(json);
    expect([...back.tensors.keys()].sort()).toEqual(['m.w', 'mask', 'step']);
    expect(Array.from(back.tensors.get('m.w')!.dataSync())).toEqual(
      Array.from(tensors.get('m.w')!.dataSync()),
    );
    expect(Object.is(back.tensors.get('m.w')!.dataSync()[1], -0)).toBe(true);
    expect(back.tensors.get('step')!.dtype).toBe('int32');
    expect(Array.from(back.tensors.get('mask')!.dataSync())).toEqual([1, 0, 1]);
    disposePluginState(back);
    tf.dispose([...tensors.values()]);
  });

  it('rejects state that would not survive a checkpoint, naming the field', async () => {
    const t = tf.scalar(1);
    await expect(serializePluginState({ json: { lr: NaN }, tensors: new Map() }, 'p')).rejects.toThrow(
      'p: state().json.lr = NaN is not finite',
    );
    await expect(
      serializePluginState({ json: { m: new Float32Array(2) }, tensors: new Map() }, 'p'),
    ).rejects.toThrow('p: state().json.m is a typed array');
    t.dispose();
    await expect(serializePluginState({ json: {}, tensors: new Map([['w', t]]) }, 'p')).rejects.toThrow(
      "tensors['w'] is not a live tf.Tensor",
    );
    expect(() => deserializePluginState({ json: '[1]', tensors: new Uint8Array() }, 'ckpt')).toThrow(
      'ckpt: the JSON part must be an object',
    );
  });
});
