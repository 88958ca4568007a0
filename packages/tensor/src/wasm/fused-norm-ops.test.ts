import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { fusedGelu, fusedLayerNorm } from './fused-ops.js';
import { fusedRmsNorm, fusedSwiglu } from './fused-norm-ops.js';
import { activate, on, relErr, seeded } from './test-helpers.js';

/** The unfused forms, exactly as @relign/lm's model layers computed them before the fused kernels. */
const rmsRef = (x: tf.Tensor, g: tf.Tensor, eps: number) =>
  tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), g);
const swigluRef = (gate: tf.Tensor, up: tf.Tensor) => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
const C = 1.5957691216057308;
const geluRef = (x: tf.Tensor) =>
  tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), C * 0.044715), C))));
function layerNormRef(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number) {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), g), b);
}

async function kernelsOf(f: () => tf.Tensor | tf.Tensor[]): Promise<string[]> {
  const info = await tf.profile(() => f());
  return info.kernelNames;
}

/** Shapes with a tail (d not a multiple of 4), one row, rank 3, and an exact multiple of 4. */
const SHAPES = [
  [1, 7],
  [33, 130],
  [2, 5, 7],
  [4, 128],
  [3, 1],
];

/** Value and gradients of sum(f(inputs) * w) w.r.t. every input (w: a fixed weighting, so the loss is
 * not symmetric in the outputs). */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, w: tf.Tensor, inputs: tf.Tensor[]): tf.Tensor[] {
  const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), w)))(inputs);
  return [f(...inputs), value, ...grads];
}

describe('fused RMSNorm, SwiGLU and the fused backward kernels', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('fusedRmsNorm: values and gradients (x and gamma) equal the unfused ops on cpu and on wasm', async () => {
    for (const shape of SHAPES) {
      const d = shape[shape.length - 1]!;
      const [x, g, w] = [await seeded(shape, d), await seeded([d], d + 1), await seeded(shape, d + 2)];
      const run = (f: (x: tf.Tensor, g: tf.Tensor) => tf.Tensor) => () =>
        valueAndGrads(f as (...xs: tf.Tensor[]) => tf.Tensor, tf.tensor(w, shape), [
          tf.tensor(x, shape),
          tf.tensor(g, [d]),
        ]);
      const want = await on(
        'cpu',
        run((a, b) => rmsRef(a, b, 1e-6)),
      );
      const wasmUnfused = await on(
        'wasm',
        run((a, b) => rmsRef(a, b, 1e-6)),
      );
      const got = await on(
        'wasm',
        run((a, b) => fusedRmsNorm(a, b, 1e-6)),
      );
      got.forEach((v, i) => {
        expect(relErr(v, want[i]!), `shape ${shape} output ${i} vs cpu`).toBeLessThan(1e-5);
        expect(relErr(v, wasmUnfused[i]!), `shape ${shape} output ${i} vs wasm`).toBeLessThan(1e-5);
      });
      const cpuFused = await on(
        'cpu',
        run((a, b) => fusedRmsNorm(a, b, 1e-6)),
      );
      cpuFused.forEach((v, i) => expect(relErr(v, want[i]!), `cpu fallback ${i}`).toBeLessThan(1e-6));
    }
  });

  it('fusedSwiglu: values and gradients (gate and up) equal the unfused ops, large |gate| included', async () => {
    for (const shape of SHAPES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const gate = Float32Array.from(await seeded(shape, n), (v, i) => (i % 13 === 0 ? v * 40 : v * 3));
      const [up, w] = [await seeded(shape, n + 1), await seeded(shape, n + 2)];
      const run = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) => () =>
        valueAndGrads(f as (...xs: tf.Tensor[]) => tf.Tensor, tf.tensor(w, shape), [
          tf.tensor(gate, shape),
          tf.tensor(up, shape),
        ]);
      const want = await on('cpu', run(swigluRef));
      const got = await on('wasm', run(fusedSwiglu));
      got.forEach((v, i) => expect(relErr(v, want[i]!), `shape ${shape} output ${i}`).toBeLessThan(1e-5));
      const cpuFused = await on('cpu', run(fusedSwiglu));
      cpuFused.forEach((v, i) => expect(relErr(v, want[i]!), `cpu fallback ${i}`).toBeLessThan(1e-6));
    }
  });

  it('fusedLayerNorm and fusedGelu gradients come from the fused backward kernels and equal the unfused ops', async () => {
    for (const shape of SHAPES) {
      const d = shape[shape.length - 1]!;
      const [x, g, b, w] = await Promise.all(
        [0, 1, 2, 3].map((i) => seeded(i === 1 || i === 2 ? [d] : shape, d * 7 + i)),
      );
      const run = (f: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor) => () =>
        valueAndGrads(f as (...xs: tf.Tensor[]) => tf.Tensor, tf.tensor(w!, shape), [
          tf.tensor(x!, shape),
          tf.tensor(g!, [d]),
          tf.tensor(b!, [d]),
        ]);
      const want = await on(
        'cpu',
        run((xx, gg, bb) => geluRef(layerNormRef(xx, gg, bb, 1e-5))),
      );
      const got = await on(
        'wasm',
        run((xx, gg, bb) => fusedGelu(fusedLayerNorm(xx, gg, bb, 1e-5))),
      );
      got.forEach((v, i) => expect(relErr(v, want[i]!), `shape ${shape} output ${i}`).toBeLessThan(1e-5));
    }
  });

  it('run as one kernel each way on wasm, without leaks; clear errors for mismatched shapes', async () => {
    await activate('wasm');
    const [x, g, b, up] = [
      tf.randomNormal([6, 13]),
      tf.randomNormal([13]),
      tf.randomNormal([13]),
      tf.randomNormal([6, 13]),
    ];
    type F = (...xs: tf.Tensor[]) => tf.Tensor;
    const cases: [F, tf.Tensor[], string[]][] = [
      [(a, bb) => fusedRmsNorm(a!, bb!), [x, g], ['RelignRmsNormGrad']],
      [(a, u) => fusedSwiglu(a!, u!), [x, up], ['RelignSwigluGrad']],
      [
        (a, bb, c) => fusedGelu(fusedLayerNorm(a!, bb!, c!)),
        [x, g, b],
        ['RelignLayerNormGrad', 'RelignGeluGrad'],
      ],
    ];
    const grads = (f: F, xs: tf.Tensor[]) => () => tf.grads((...v: tf.Tensor[]) => tf.sum(f(...v)))(xs);
    expect(await kernelsOf(() => fusedRmsNorm(x, g))).toEqual(['RelignRmsNorm']);
    expect(await kernelsOf(() => fusedSwiglu(x, up))).toEqual(['RelignSwiglu']);
    for (const [f, xs, want] of cases) {
      const kernels = await kernelsOf(grads(f, xs));
      for (const k of want) expect(kernels).toContain(k);
      // The unfused backward passes' ops are gone.
      for (const k of ['Sigmoid', 'Rsqrt', 'Mean', 'Pow']) expect(kernels, want.join()).not.toContain(k);
      await assertNoLeaks(grads(f, xs), { label: `${want.join()} gradients` });
    }
    await assertNoLeaks(() => fusedRmsNorm(x, g), { label: 'fusedRmsNorm' });
    await assertNoLeaks(() => fusedSwiglu(x, up), { label: 'fusedSwiglu' });
    tf.tidy(() => {
      expect(() => fusedRmsNorm(x, tf.ones([12]))).toThrow(/one value per feature/);
      expect(() => fusedSwiglu(x, tf.ones([6, 12]))).toThrow(/same shape/);
    });
    tf.dispose([x, g, b, up]);
  });
});
