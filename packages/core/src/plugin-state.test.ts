import * as tf from '@tensorflow/tfjs-core';
import { AdamW, createRng, initBackend } from '@relign/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadOptimizerPluginState, optimizerPluginState } from './plugin-state.js';

describe('optimizer plugin state', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('round-trips the AdamW moments, the RNG and the counters', async () => {
    const w = tf.variable(tf.tensor1d([1, -2, 3]), true, 'plugin-state/w');
    const a = new AdamW({ lr: 0.1 });
    await a.guardedStep({ w: tf.tensor1d([0.5, -1, 2]) }, { w });
    const rng = createRng(7);
    rng.nextUint32();
    const saved = optimizerPluginState(a, rng, { updates: 3, skipped: 1 });
    expect([...saved.tensors.keys()].every((k) => k.startsWith('optimizer.'))).toBe(true);

    const b = new AdamW({ lr: 0.1 });
    const restored = loadOptimizerPluginState('test', saved, b);
    expect(restored.updates).toBe(3);
    expect(restored.skipped).toBe(1);
    expect(restored.rng.nextUint32()).toBe(rng.nextUint32());
    const again = optimizerPluginState(b, restored.rng, restored);
    expect(again.json.optimizerStep).toBe(saved.json.optimizerStep);
    for (const [k, t] of saved.tensors) {
      expect(Array.from(await again.tensors.get(k)!.data())).toEqual(Array.from(await t.data()));
    }
    for (const t of [...saved.tensors.values(), ...again.tensors.values()]) t.dispose();
    a.dispose();
    b.dispose();
    w.dispose();
  });

  it('names the plugin and the field of a state that is not of this format', () => {
    const a = new AdamW();
    const json = { optimizerStep: 0, rng: createRng(1).state(), updates: '2', skipped: 0 };
    expect(() => loadOptimizerPluginState('grpo', { json, tensors: new Map() }, a)).toThrow(
      /grpo\.load: state\.json\.updates must be an integer >= 0 \(got "2"\)/,
    );
    const stray = new Map([['critic.w', tf.scalar(1)]]);
    expect(() =>
      loadOptimizerPluginState('grpo', { json: { ...json, updates: 2 }, tensors: stray }, a),
    ).toThrow(/grpo\.load: unexpected state tensor 'critic\.w'/);
    stray.get('critic.w')!.dispose();
    a.dispose();
  });
});
