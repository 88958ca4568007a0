/**
 * The fused AdamW step on wasm (one `RelignAdamW` kernel for every parameter) against the per-parameter tfjs
 * ops it replaces (the same backend with the kernel unregistered): identical p, m, v and guard numbers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks, useBackend } from '../testing/index.js';
import { registerWasmKernels } from '../wasm/index.js';
import { ADAMW_KERNEL, setFusedGroupElements } from '../wasm/adamw-op.js';
import { seeded } from '../wasm/test-helpers.js';
import { AdamW, type AdamWOptions, type GuardedStepOptions } from './adamw.js';

/** Shapes with sizes not a multiple of 4 (and one of exactly 4 and one of 1), matrices and vectors. */
const SHAPES: Record<string, number[]> = {
  emb: [13, 7],
  'h.0.w': [8, 16],
  'h.0.b': [5],
  'h.0.g': [1],
  'h.1.w': [3, 3, 3],
  'h.1.b': [4],
  head: [131],
};

async function model(seed: number) {
  const params: Record<string, tf.Variable> = {};
  const gradsPerStep: Record<string, Float32Array>[] = [];
  let k = seed;
  for (const [name, shape] of Object.entries(SHAPES)) {
    params[name] = tf.variable(tf.tensor(await seeded(shape, k++), shape), true, `fused-test/${name}/${k}`);
  }
  for (let s = 0; s < 5; s++) {
    const g: Record<string, Float32Array> = {};
    for (const [name, shape] of Object.entries(SHAPES)) g[name] = await seeded(shape, 1000 + 10 * s + k++);
    gradsPerStep.push(g);
  }
  return { params, gradsPerStep };
}

async function snapshot(params: Record<string, tf.Variable>, opt: AdamW): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [name, p] of Object.entries(params)) out[`p.${name}`] = Array.from(await p.data());
  const state = opt.state();
  for (const [key, t] of state.tensors) out[key] = Array.from(await t.data());
  tf.dispose([...state.tensors.values()]);
  return out;
}

/** Runs `steps` guarded steps (or plain ones) from the same seeded model; returns all values and results. */
async function run(
  options: AdamWOptions,
  step: GuardedStepOptions,
  steps: number,
  kind: 'guarded' | 'plain' = 'guarded',
) {
  const { params, gradsPerStep } = await model(3);
  const opt = new AdamW(options);
  const results = [];
  for (let s = 0; s < steps; s++) {
    const grads = Object.fromEntries(
      Object.entries(gradsPerStep[s]!).map(([name, g]) => [name, tf.tensor(g, SHAPES[name])]),
    );
    results.push(
      kind === 'guarded'
        ? await opt.guardedStep(grads, params, step)
        : await opt.applyGradients(grads, params, step),
    );
    tf.dispose(Object.values(grads));
  }
  const values = await snapshot(params, opt);
  opt.dispose();
  tf.dispose(Object.values(params));
  return { values, results };
}

/** Runs `fn` with the fused kernel unregistered: today's per-parameter tfjs ops on the same backend. */
async function unfused<T>(fn: () => Promise<T>): Promise<T> {
  tf.unregisterKernel(ADAMW_KERNEL, 'wasm');
  try {
    return await fn();
  } finally {
    registerWasmKernels();
  }
}

describe('AdamW fused on wasm', () => {
  beforeAll(() => useBackend('wasm'));
  afterAll(() => useBackend('cpu'));

  it('runs one RelignAdamW kernel per step phase instead of dozens of kernels per parameter', async () => {
    const { params, gradsPerStep } = await model(1);
    const grads = Object.fromEntries(
      Object.entries(gradsPerStep[0]!).map(([name, g]) => [name, tf.tensor(g, SHAPES[name])]),
    );
    const count = async () => {
      const opt = new AdamW({ lr: 1e-2 });
      const info = await tf.profile(async () => {
        await opt.guardedStep(grads, params, { maxGradNorm: 1 });
      });
      opt.dispose();
      return info.kernels.map((k) => k.name);
    };
    const fusedKernels = await count();
    const unfusedKernels = await unfused(count);
    // prepare (guard look-ahead) and commit: one call each for the whole model.
    expect(fusedKernels.filter((k) => k === ADAMW_KERNEL)).toHaveLength(2);
    expect(unfusedKernels).not.toContain(ADAMW_KERNEL);
    expect(fusedKernels.length * 5).toBeLessThan(unfusedKernels.length);
    tf.dispose([...Object.values(grads), ...Object.values(params)]);
  });

  for (const [label, options, step] of [
    ['defaults, clipped', { lr: 1e-2 }, { maxGradNorm: 1 }],
    ['weight decay 0.1, no clipping', { lr: 3e-3, weightDecay: 0.1, beta2: 0.95 }, {}],
    ['no weight decay, clipped below every norm', { lr: 1e-3, weightDecay: 0 }, { maxGradNorm: 0.05 }],
    [
      'decay chosen by name (a vector decays, a matrix does not)',
      { lr: 1e-2, weightDecay: 0.5, decay: (name: string) => name.endsWith('.b') || name === 'emb' },
      { maxGradNorm: 2 },
    ],
  ] as [string, AdamWOptions, GuardedStepOptions][]) {
    it(`1 and 5 steps equal today's ops bit for bit: ${label}`, async () => {
      for (const steps of [1, 5]) {
        const want = await unfused(() => run(options, step, steps));
        const got = await run(options, step, steps);
        expect(Object.keys(got.values).sort()).toEqual(Object.keys(want.values).sort());
        for (const key of Object.keys(want.values)) expect(got.values[key], key).toEqual(want.values[key]);
        got.results.forEach((r, i) => {
          const w = want.results[i]!;
          expect(r.skipped).toBe(false);
          expect(r.gradNorm).toBe(w.gradNorm);
          expect(r.step).toBe(w.step);
          // Guard numbers: the same update, summed in another order.
          for (const k of ['updateNorm', 'weightMax'] as const) {
            expect(Math.abs((r as never)[k] - (w as never)[k])).toBeLessThanOrEqual(1e-6 * (w as never)[k]);
          }
        });
      }
    });
  }

  it('applyGradients (unguarded) is fused and equal too; decay on/off matters', async () => {
    const o = { lr: 1e-2, weightDecay: 0.5 };
    const want = await unfused(() => run(o, { maxGradNorm: 1 }, 3, 'plain'));
    const got = await run(o, { maxGradNorm: 1 }, 3, 'plain');
    expect(got.values).toEqual(want.values);
    const noDecay = await run({ ...o, decay: () => false }, { maxGradNorm: 1 }, 3, 'plain');
    expect(noDecay.values['p.emb']).not.toEqual(got.values['p.emb']);
    expect(noDecay.values['p.h.0.b']).toEqual(got.values['p.h.0.b']); // rank 1: never decayed by default
  });

  it('splits a model larger than the group bound into several calls, same values', async () => {
    const whole = await run({ lr: 1e-2 }, { maxGradNorm: 1 }, 3);
    const prev = setFusedGroupElements(100); // every parameter or two its own call
    try {
      const split = await run({ lr: 1e-2 }, { maxGradNorm: 1 }, 3);
      expect(split.values).toEqual(whole.values);
    } finally {
      setFusedGroupElements(prev);
    }
  });

  it('refuses a NaN gradient or non-finite result: parameters, moments and step unchanged', async () => {
    const { params, gradsPerStep } = await model(2);
    const opt = new AdamW({ lr: 1e-2 });
    const grads = (edit?: (name: string, g: Float32Array) => void) =>
      Object.fromEntries(
        Object.entries(gradsPerStep[0]!).map(([name, g]) => {
          const copy = Float32Array.from(g);
          edit?.(name, copy);
          return [name, tf.tensor(copy, SHAPES[name])];
        }),
      );
    const good = grads();
    await opt.guardedStep(good, params);
    const before = await snapshot(params, opt);
    const nan = grads((name, g) => {
      if (name === 'head') g[130] = NaN; // the odd tail of an odd-sized parameter
    });
    const r1 = await opt.guardedStep(nan, params, { maxGradNorm: 1 });
    expect(r1).toMatchObject({ skipped: true, reason: 'non-finite-gradient', step: 1 });
    // A finite gradient whose update overflows float32 in one element of a 1-element parameter.
    const edge = new AdamW({ lr: 1e38, weightDecay: 0, maxUpdateNorm: Infinity, maxWeightAbs: Infinity });
    const big = tf.tensor([-3e38], [1]);
    params['h.0.g']!.assign(big);
    big.dispose();
    const pinned = grads((name, g) => {
      if (name === 'h.0.g') g[0] = 1;
    });
    const before2 = await snapshot(params, opt);
    const r2 = await edge.guardedStep(pinned, params);
    expect(r2).toMatchObject({ skipped: true, reason: 'non-finite-weights' });
    expect(await snapshot(params, opt)).toEqual(before2);
    expect(edge.step).toBe(0);
    expect(opt.step).toBe(1);
    expect(before2['p.h.0.g']).toEqual([Math.fround(-3e38)]);
    const after = await snapshot(params, opt);
    delete after['p.h.0.g'];
    delete before['p.h.0.g'];
    expect(after).toEqual(before);
    tf.dispose([...Object.values(good), ...Object.values(nan), ...Object.values(pinned)]);
    tf.dispose(Object.values(params));
    opt.dispose();
    edge.dispose();
  });

  it('does not leak: steps taken, skipped, prepared and discarded', async () => {
    const { params, gradsPerStep } = await model(4);
    const grads = Object.fromEntries(
      Object.entries(gradsPerStep[0]!).map(([name, g]) => [name, tf.tensor(g, SHAPES[name])]),
    );
    const opt = new AdamW({ lr: 1e-3 });
    await assertNoLeaks(
      async () => {
        await opt.guardedStep(grads, params, { maxGradNorm: 1 });
        await opt.applyGradients(grads, params);
        await opt.guardedStep(grads, params, { lr: 1e30 }); // skipped: update norm
        (await opt.prepareStep(grads, params)).discard();
      },
      { label: 'fused AdamW' },
    );
    opt.dispose();
    tf.dispose([...Object.values(grads), ...Object.values(params)]);
  });

  it('saves and resumes across the fused and unfused paths identically', async () => {
    const o = { lr: 5e-3, weightDecay: 0.1 };
    const all = await run(o, { maxGradNorm: 1 }, 5);
    // Steps 1-2 unfused, save, load into a new optimizer, steps 3-5 fused.
    const { params, gradsPerStep } = await model(3);
    const step = async (opt: AdamW, s: number) => {
      const grads = Object.fromEntries(
        Object.entries(gradsPerStep[s]!).map(([name, g]) => [name, tf.tensor(g, SHAPES[name])]),
      );
      await opt.guardedStep(grads, params, { maxGradNorm: 1 });
      tf.dispose(Object.values(grads));
    };
    const first = new AdamW(o);
    await unfused(async () => {
      await step(first, 0);
      await step(first, 1);
    });
    const saved = first.state();
    first.dispose();
    const second = new AdamW(o);
    second.load(saved);
    tf.dispose([...saved.tensors.values()]);
    for (let s = 2; s < 5; s++) await step(second, s);
    expect(second.step).toBe(5);
    expect(await snapshot(params, second)).toEqual(all.values);
    second.dispose();
    tf.dispose(Object.values(params));
  });
});
