import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '../testing/index.js';
import { AdamW } from './adamw.js';
import { checkWeights, DEFAULT_MAX_UPDATE_NORM, DEFAULT_MAX_WEIGHT_ABS } from './guard.js';

/** A small model: a matrix and a bias, with fixed gradients. */
function setup(values = [0.5, -0.25, 1, 2]) {
  const w = tf.variable(tf.tensor2d(values, [2, 2]));
  const b = tf.variable(tf.tensor1d([0.1, -0.1]));
  const gw = tf.tensor2d([0.3, -0.2, 0.1, 0.4], [2, 2]);
  const gb = tf.tensor1d([1, -1]);
  const dispose = () => tf.dispose([w, b, gw, gb]);
  return { params: { w, b }, grads: { w: gw, b: gb }, dispose };
}

async function values(params: Record<string, tf.Variable>): Promise<number[][]> {
  return Promise.all(Object.values(params).map(async (v) => Array.from(await v.data())));
}

describe.each(TEST_BACKENDS)('AdamW.guardedStep on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('skips a finite but exploding step (lr 1e30): weights, moments and step count unchanged', async () => {
    const { params, grads, dispose } = setup();
    const opt = new AdamW({ lr: 1e-2 });
    await opt.guardedStep(grads, params); // moments exist, so "unchanged" covers them too
    const before = await values(params);
    const state0 = opt.state();
    const r = await opt.guardedStep(grads, params, { lr: 1e30 });
    expect(r.skipped).toBe(true);
    expect(r.reason).toBe('update-norm');
    expect(r.updateNorm).toBeGreaterThan(DEFAULT_MAX_UPDATE_NORM);
    expect(r.message).toMatch(/update norm .* exceeds maxUpdateNorm 1\.00e\+4 \(lr 1e\+30\): step skipped/);
    expect(r.step).toBe(1);
    expect(opt.step).toBe(1);
    expect(await values(params)).toEqual(before);
    const state1 = opt.state();
    for (const [k, t] of state0.tensors) {
      expect(Array.from(await state1.tensors.get(k)!.data())).toEqual(Array.from(await t.data()));
    }
    tf.dispose([...state0.tensors.values(), ...state1.tensors.values()]);
    opt.dispose();
    dispose();
  });

  it('takes a sane step exactly as applyGradients does', async () => {
    const a = setup();
    const b = setup();
    const guarded = new AdamW({ lr: 1e-2, weightDecay: 0.1 });
    const plain = new AdamW({ lr: 1e-2, weightDecay: 0.1 });
    for (let i = 0; i < 3; i++) {
      const r = await guarded.guardedStep(a.grads, a.params, { maxGradNorm: 0.5 });
      const p = await plain.applyGradients(b.grads, b.params, { maxGradNorm: 0.5 });
      expect(r.skipped).toBe(false);
      expect(r.reason).toBeUndefined();
      expect(r.step).toBe(i + 1);
      expect(r.gradNorm).toBe(p.gradNorm);
      expect(r.updateNorm).toBeGreaterThan(0);
      expect(r.updateNorm).toBeLessThan(0.1);
    }
    expect(await values(a.params)).toEqual(await values(b.params));
    [guarded, plain].forEach((o) => o.dispose());
    a.dispose();
    b.dispose();
  });

  it('skips a step that grows a weight beyond maxWeightAbs, but lets a large loaded weight shrink', async () => {
    const { params, grads, dispose } = setup();
    const opt = new AdamW({ lr: 1e3, weightDecay: 0, maxUpdateNorm: Infinity, maxWeightAbs: 100 });
    const before = await values(params);
    const r = await opt.guardedStep(grads, params);
    expect(r).toMatchObject({ skipped: true, reason: 'weight-magnitude', step: 0 });
    expect(r.message).toMatch(/grow a weight to 999\.9 \(maxWeightAbs 100\)/);
    expect(await values(params)).toEqual(before);
    // The default bound, with weights loaded beyond it: a small step that shrinks them is taken.
    const big = setup([2e4, -2e4, 3e4, 1]);
    const sane = new AdamW({ lr: 1e-3, weightDecay: 0 });
    const ok = await sane.guardedStep(big.grads, big.params);
    expect(ok.skipped).toBe(false);
    expect(ok.weightMax).toBeGreaterThan(DEFAULT_MAX_WEIGHT_ABS);
    [opt, sane].forEach((o) => o.dispose());
    dispose();
    big.dispose();
  });

  it('skips non-finite losses, gradients and resulting weights, naming the cause', async () => {
    const { params, grads, dispose } = setup();
    const opt = new AdamW({ lr: 1e-2 });
    const before = await values(params);
    expect(await opt.guardedStep(grads, params, { loss: NaN })).toMatchObject({
      skipped: true,
      reason: 'non-finite-loss',
    });
    const nan = { w: tf.tensor2d([NaN, 0, 0, 0], [2, 2]), b: grads.b };
    expect((await opt.guardedStep(nan, params)).reason).toBe('non-finite-gradient');
    // Finite update, but the sum overflows float32.
    const edge = setup([3e38, 0, 0, 0]);
    const r = await new AdamW({
      lr: 1e38,
      weightDecay: 0,
      maxUpdateNorm: Infinity,
      maxWeightAbs: Infinity,
    }).guardedStep({ w: tf.neg(edge.grads.w) }, edge.params);
    expect(r.reason).toBe('non-finite-weights');
    expect(await values(params)).toEqual(before);
    expect(opt.step).toBe(0);
    tf.dispose(nan.w);
    opt.dispose();
    dispose();
    edge.dispose();
  });

  it('prepareStep lets two optimizers step both or neither', async () => {
    const a = setup();
    const c = setup();
    const policy = new AdamW({ lr: 1e-2 });
    const critic = new AdamW({ lr: 1e30 });
    const before = await values(a.params);
    const pending = [
      await policy.prepareStep(a.grads, a.params),
      await critic.prepareStep(c.grads, c.params),
    ];
    expect(pending.map((p) => p.skipped)).toEqual([false, true]);
    pending.forEach((p) => p.discard());
    expect(await values(a.params)).toEqual(before);
    expect(policy.step).toBe(0);
    // A commit after another step of the same optimizer would apply a stale update: refused.
    const stale = await policy.prepareStep(a.grads, a.params);
    await policy.guardedStep(a.grads, a.params);
    expect(() => stale.commit()).toThrow('another step ran between prepareStep() and commit()');
    [policy, critic].forEach((o) => o.dispose());
    a.dispose();
    c.dispose();
  });

  it('takes a step without gradients as applyGradients does (the step count advances)', async () => {
    const { params, dispose } = setup();
    const opt = new AdamW();
    expect(await opt.guardedStep({}, params)).toMatchObject({ skipped: false, step: 1, updateNorm: 0 });
    opt.dispose();
    dispose();
  });

  it('validates the bounds and does not leak, taken or skipped', async () => {
    expect(() => new AdamW({ maxUpdateNorm: 0 })).toThrow('AdamW: maxUpdateNorm must be a number > 0');
    const { params, grads, dispose } = setup();
    const opt = new AdamW({ lr: 1e-3 });
    await expect(opt.guardedStep(grads, params, { maxWeightAbs: NaN })).rejects.toThrow(
      'maxWeightAbs must be a number > 0',
    );
    await assertNoLeaks(async () => {
      await opt.guardedStep(grads, params, { maxGradNorm: 1 });
      await opt.guardedStep(grads, params, { lr: 1e30 });
      (await opt.prepareStep(grads, params)).discard();
    });
    opt.dispose();
    dispose();
  });
});

describe('checkWeights', () => {
  it('names the first non-finite or too large weight, reading on the device', async () => {
    const a = tf.tensor1d([1, -3]);
    const b = tf.tensor1d([2e4]);
    const c = tf.tensor1d([Infinity]);
    expect(await checkWeights([['a', a]])).toEqual({ ok: true, maxAbs: 3 });
    expect(
      await checkWeights([
        ['a', a],
        ['b', b],
      ]),
    ).toMatchObject({
      ok: false,
      firstBad: 'b',
      problem: 'too-large',
      maxAbs: 2e4,
    });
    expect(
      await checkWeights(
        [
          ['a', a],
          ['b', b],
        ],
        1e5,
      ),
    ).toMatchObject({ ok: true });
    expect(
      await checkWeights([
        ['c', c],
        ['b', b],
      ]),
    ).toMatchObject({ ok: false, firstBad: 'c', problem: 'non-finite' });
    tf.dispose([a, b, c]);
  });
});
