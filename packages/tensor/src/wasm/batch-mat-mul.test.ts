import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { gemmTuning, rowRuns } from './gemm.js';
import { registerWasmKernels, restoreStockWasmKernels } from './index.js';
import { activate, on, relErr, seeded } from './test-helpers.js';

const TOL = 1e-4;
const TRANSPOSES = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

/** Stored shape of an operand whose logical matrix is rows x cols, with leading batch dims. */
function stored(batch: number[], rows: number, cols: number, transposed: boolean): number[] {
  return [...batch, ...(transposed ? [cols, rows] : [rows, cols])];
}

interface Case {
  batchA: number[];
  batchB: number[];
  m: number;
  k: number;
  n: number;
}

// [batchA, batchB, m, k, n]: rank 2, 3 and 4; batch 1 and > 1; broadcast batches; odd sizes, sizes at
// and around the 5 x 8 register tile, K past the 256-deep K block, N past one packed N block.
const FORWARD: Case[] = [
  { batchA: [], batchB: [], m: 1, k: 1, n: 1 },
  { batchA: [], batchB: [], m: 5, k: 7, n: 8 },
  { batchA: [], batchB: [], m: 13, k: 17, n: 9 },
  { batchA: [], batchB: [], m: 64, k: 32, n: 64 },
  { batchA: [], batchB: [], m: 33, k: 300, n: 40 },
  { batchA: [], batchB: [], m: 7, k: 520, n: 300 },
  { batchA: [], batchB: [], m: 3, k: 0, n: 4 },
  { batchA: [1], batchB: [1], m: 6, k: 9, n: 16 },
  { batchA: [4], batchB: [4], m: 9, k: 12, n: 11 },
  { batchA: [5], batchB: [], m: 7, k: 6, n: 24 },
  { batchA: [], batchB: [3], m: 8, k: 5, n: 10 },
  { batchA: [1], batchB: [4], m: 6, k: 8, n: 16 },
  { batchA: [3], batchB: [1], m: 4, k: 8, n: 13 },
  { batchA: [2, 3], batchB: [2, 3], m: 10, k: 7, n: 9 },
  { batchA: [2, 3], batchB: [3], m: 5, k: 4, n: 8 },
  { batchA: [2, 3], batchB: [], m: 6, k: 5, n: 7 },
  { batchA: [6, 1], batchB: [1], m: 3, k: 9, n: 5 },
  // Decode-sized products: exact row tiles (2, 3, 6, 12, 16 rows), dot products for a transposed B
  // (k and n off multiples of 4), a batch of one-row products (attention of one query), K blocks.
  { batchA: [], batchB: [], m: 2, k: 9, n: 16 },
  { batchA: [], batchB: [], m: 3, k: 5, n: 24 },
  { batchA: [], batchB: [], m: 6, k: 13, n: 8 },
  { batchA: [], batchB: [], m: 12, k: 31, n: 32 },
  { batchA: [], batchB: [], m: 16, k: 128, n: 256 },
  { batchA: [16, 4], batchB: [16, 4], m: 1, k: 32, n: 40 },
  { batchA: [4, 2], batchB: [4, 2], m: 1, k: 23, n: 7 },
  { batchA: [3], batchB: [3], m: 11, k: 300, n: 16 },
  { batchA: [3], batchB: [1], m: 2, k: 6, n: 8 },
];

function label(c: Case, ta: boolean, tb: boolean): string {
  return `[${c.batchA}|${c.m}x${c.k}] x [${c.batchB}|${c.k}x${c.n}] tA=${ta} tB=${tb}`;
}

describe('wasm BatchMatMul', () => {
  beforeAll(() => activate('wasm'));
  afterAll(() => tf.setBackend('cpu'));

  it('is the relign kernel after initBackend, and registration is idempotent', () => {
    const kernel = tf.getKernel('BatchMatMul', 'wasm')!;
    registerWasmKernels();
    registerWasmKernels();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(kernel.kernelFunc);
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    expect(tf.getKernel('_FusedMatMul', 'wasm')).toBeDefined();
    // Round trip: the stock kernels come back, then ours again.
    restoreStockWasmKernels();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).not.toBe(kernel.kernelFunc);
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined();
    registerWasmKernels();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(kernel.kernelFunc);
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it.each(FORWARD)('forward equals cpu: %j (all transposes)', async (c) => {
    let seed = 1000 + c.m * 31 + c.k * 7 + c.n;
    for (const [ta, tb] of TRANSPOSES) {
      const aShape = stored(c.batchA, c.m, c.k, ta);
      const bShape = stored(c.batchB, c.k, c.n, tb);
      const a = await seeded(aShape, seed++);
      const b = await seeded(bShape, seed++);
      const f = () => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb);
      const want = await on('cpu', f);
      const got = await on('wasm', f);
      expect(relErr(got, want), label(c, ta, tb)).toBeLessThan(TOL);
    }
  });

  it('reading B in place, dot products and packing give the same results (every code path)', async () => {
    const saved = { ...gemmTuning };
    try {
      for (const [m, k, n] of [
        [1, 40, 16],
        [7, 300, 24],
        [16, 130, 32],
        [70, 33, 64],
        [130, 520, 8],
      ] as const) {
        for (const tb of [false, true]) {
          const bShape = tb ? [n, k] : [k, n];
          const a = await seeded([m, k], m + k);
          const b = await seeded(bShape, k + n);
          const f = () => tf.matMul(tf.tensor(a, [m, k]), tf.tensor(b, bShape), false, tb);
          const want = await on('cpu', f);
          for (const rows of [0, Infinity]) {
            gemmTuning.directMaxRows = rows;
            gemmTuning.ntMaxRows = rows;
            const got = await on('wasm', f);
            expect(relErr(got, want), `${m}x${k}x${n} tB=${tb} maxRows=${rows}`).toBeLessThan(TOL);
          }
        }
      }
    } finally {
      Object.assign(gemmTuning, saved);
    }
  });

  it('splits M into full row tiles of at most 5 rows', () => {
    expect(rowRuns(1)).toEqual([[1, 1]]);
    expect(rowRuns(5)).toEqual([[5, 5]]);
    expect(rowRuns(6)).toEqual([[3, 6]]);
    expect(rowRuns(13)).toEqual([
      [5, 5],
      [4, 8],
    ]);
    expect(rowRuns(16)).toEqual([[4, 16]]);
    for (let m = 1; m <= 200; m++) {
      const runs = rowRuns(m);
      expect(
        runs.reduce((s, [, rows]) => s + rows, 0),
        `m=${m}`,
      ).toBe(m);
      for (const [h, rows] of runs) {
        expect(h >= 1 && h <= 5 && rows % h === 0, `m=${m}`).toBe(true);
      }
    }
  });

  it('broadcasts batch dims both ways, [2,1] with [1,3] (checked per slice against 2-D products)', async () => {
    const [m, k, n] = [4, 6, 9];
    for (const [ta, tb] of TRANSPOSES) {
      const aShape = stored([2, 1], m, k, ta);
      const bShape = stored([1, 3], k, n, tb);
      const a = await seeded(aShape, 7);
      const b = await seeded(bShape, 8);
      const got = await on('wasm', () => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb));
      expect(got.length).toBe(2 * 3 * m * n);
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 3; j++) {
          const aSlice = a.subarray(i * m * k, (i + 1) * m * k);
          const bSlice = b.subarray(j * k * n, (j + 1) * k * n);
          const want = await on('cpu', () =>
            tf.matMul(tf.tensor(aSlice, aShape.slice(2)), tf.tensor(bSlice, bShape.slice(2)), ta, tb),
          );
          const slice = got.subarray((i * 3 + j) * m * n, (i * 3 + j + 1) * m * n);
          expect(relErr(slice, want), `batch (${i},${j}) tA=${ta} tB=${tb}`).toBeLessThan(TOL);
        }
      }
    }
  });

  // Gradients (tfjs's BatchMatMul gradient needs equal batch shapes: no broadcast here).
  const GRAD: Case[] = [
    { batchA: [], batchB: [], m: 7, k: 5, n: 9 },
    { batchA: [], batchB: [], m: 16, k: 24, n: 8 },
    { batchA: [1], batchB: [1], m: 6, k: 10, n: 12 },
    { batchA: [3], batchB: [3], m: 8, k: 4, n: 5 },
    { batchA: [2, 2], batchB: [2, 2], m: 5, k: 9, n: 16 },
  ];

  it.each(GRAD)('gradients equal cpu: %j (all transposes)', async (c) => {
    let seed = 77 + c.m + c.k * 3 + c.n * 5;
    for (const [ta, tb] of TRANSPOSES) {
      const aShape = stored(c.batchA, c.m, c.k, ta);
      const bShape = stored(c.batchB, c.k, c.n, tb);
      const outShape = [...c.batchA, c.m, c.n];
      const a = await seeded(aShape, seed++);
      const b = await seeded(bShape, seed++);
      const w = await seeded(outShape, seed++);
      const f = () => {
        const g = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
          tf.sum(tf.mul(tf.matMul(x, y, ta, tb), tf.tensor(w, outShape))),
        );
        return g([tf.tensor(a, aShape), tf.tensor(b, bShape)]);
      };
      const [wantA, wantB] = await on('cpu', f);
      const [gotA, gotB] = await on('wasm', f);
      expect(relErr(gotA!, wantA!), `dA ${label(c, ta, tb)}`).toBeLessThan(TOL);
      expect(relErr(gotB!, wantB!), `dB ${label(c, ta, tb)}`).toBeLessThan(TOL);
    }
  });

  it('variableGrads through a two-layer net equal cpu', async () => {
    const x = await seeded([12, 10], 1);
    const w1 = await seeded([10, 16], 2);
    const w2 = await seeded([20, 16], 3); // used transposed
    const run = () => {
      const v1 = tf.variable(tf.tensor(w1, [10, 16]));
      const v2 = tf.variable(tf.tensor(w2, [20, 16]));
      const { grads, value } = tf.variableGrads(() =>
        tf.sum(tf.square(tf.matMul(tf.relu(tf.matMul(tf.tensor(x, [12, 10]), v1)), v2, false, true))),
      );
      const out = [value, grads[v1.name]!, grads[v2.name]!];
      const kept = out.map((t) => t.clone());
      tf.dispose([...out, v1, v2]);
      return kept;
    };
    const want = await on('cpu', run);
    const got = await on('wasm', run);
    want.forEach((w, i) => expect(relErr(got[i]!, w), `output ${i}`).toBeLessThan(TOL));
  });

  it('never returns stale results: different B of the same shape, temporaries, reshaped aliases', async () => {
    await activate('wasm');
    const [m, k, n] = [12, 16, 24];
    const a = tf.tensor(await seeded([m, k], 1), [m, k]);
    const b1v = await seeded([k, n], 2);
    const b2v = await seeded([k, n], 3);
    const expectProduct = async (got: tf.Tensor, bv: Float32Array, bShape: number[], tb = false) => {
      const gotV = Float32Array.from(got.dataSync());
      got.dispose();
      const av = Float32Array.from(a.dataSync());
      const want = await on('cpu', () => tf.matMul(tf.tensor(av, [m, k]), tf.tensor(bv, bShape), false, tb));
      await activate('wasm');
      expect(relErr(gotV, want)).toBeLessThan(TOL);
    };
    for (const tb of [false, true]) {
      const shape = tb ? [n, k] : [k, n];
      // Consecutive calls with two different B tensors of the same shape.
      const b1 = tf.tensor(b1v, shape);
      const b2 = tf.tensor(b2v, shape);
      await expectProduct(tf.matMul(a, b1, false, tb), b1v, shape, tb);
      await expectProduct(tf.matMul(a, b2, false, tb), b2v, shape, tb);
      await expectProduct(tf.matMul(a, b1, false, tb), b1v, shape, tb);
      tf.dispose([b1, b2]);
      // Temporaries: each B is freed before the next is made, so the heap block (and possibly the
      // backend's bookkeeping) is reused with different contents.
      for (const bv of [b1v, b2v, b1v]) {
        const tmp = tf.tensor(bv, shape);
        const prod = tf.matMul(a, tmp, false, tb);
        tmp.dispose();
        await expectProduct(prod, bv, shape, tb);
      }
    }
    // A reshaped alias shares the data of B under another shape (the stock kernel, which caches an
    // XNNPACK operator per tensor id, reuses the operator built for B's shape here and reads out of bounds).
    const b = tf.tensor(b1v, [k, n]);
    const first = tf.matMul(a, b);
    const alias = tf.reshape(b, [m * 2, (k * n) / (m * 2)]);
    const a2 = tf.ones([3, m * 2]);
    const viaAlias = tf.matMul(a2, alias);
    const av2 = Float32Array.from(a2.dataSync());
    const want = await on('cpu', () =>
      tf.matMul(tf.tensor(av2, [3, m * 2]), tf.tensor(b1v, [m * 2, (k * n) / (m * 2)])),
    );
    await activate('wasm');
    expect(relErr(viaAlias.dataSync(), want)).toBeLessThan(TOL);
    await expectProduct(first, b1v, [k, n]);
    tf.dispose([a, b, alias, a2, viaAlias]);
  });

  it('fused matMul (bias, activations, transposes, batches) equals cpu', async () => {
    const cases: { batch: number[]; m: number; k: number; n: number; biasShape: number[] }[] = [
      { batch: [], m: 9, k: 7, n: 12, biasShape: [12] },
      { batch: [3], m: 5, k: 6, n: 8, biasShape: [8] },
      { batch: [2], m: 4, k: 5, n: 6, biasShape: [4, 6] },
      { batch: [], m: 16, k: 33, n: 24, biasShape: [1, 24] },
      { batch: [2, 2], m: 1, k: 9, n: 10, biasShape: [10] },
      { batch: [], m: 3, k: 0, n: 8, biasShape: [8] },
    ];
    const activations = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const;
    let seed = 500;
    for (const c of cases) {
      for (const [ta, tb] of TRANSPOSES) {
        const aShape = stored(c.batch, c.m, c.k, ta);
        const bShape = stored(c.batch, c.k, c.n, tb);
        const a = await seeded(aShape, seed++);
        const b = await seeded(bShape, seed++);
        const bias = await seeded(c.biasShape, seed++);
        const alpha = await seeded([c.n], seed++);
        for (const activation of activations) {
          const f = () =>
            tf.fused.matMul({
              a: tf.tensor(a, aShape),
              b: tf.tensor(b, bShape),
              transposeA: ta,
              transposeB: tb,
              bias: tf.tensor(bias, c.biasShape),
              activation,
              preluActivationWeights: activation === 'prelu' ? tf.tensor(alpha, [c.n]) : undefined,
              leakyreluAlpha: 0.1,
            });
          const want = await on('cpu', f);
          const got = await on('wasm', f);
          expect(relErr(got, want), `${activation} ${JSON.stringify(c)} tA=${ta} tB=${tb}`).toBeLessThan(TOL);
        }
      }
    }
  });

  it('fused matMul gradients equal cpu', async () => {
    const a = await seeded([6, 5], 1);
    const b = await seeded([7, 5], 2);
    const bias = await seeded([7], 3);
    const f = () =>
      tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
        tf.sum(tf.square(tf.fused.matMul({ a: x, b: y, transposeB: true, bias: z, activation: 'relu' }))),
      )([tf.tensor(a, [6, 5]), tf.tensor(b, [7, 5]), tf.tensor(bias, [7])]);
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    want.forEach((w, i) => expect(relErr(got[i]!, w), `grad ${i}`).toBeLessThan(TOL));
  });

  it('leaks no tensors and no backend data', async () => {
    await activate('wasm');
    const backend = tf.backend() as tf.KernelBackend & { numDataIds(): number };
    const a = tf.randomNormal([3, 20, 12], 0, 1, 'float32', 1);
    const b = tf.randomNormal([3, 16, 12], 0, 1, 'float32', 2);
    const bias = tf.randomNormal([16], 0, 1, 'float32', 3);
    const before = backend.numDataIds();
    for (const [ta, tb] of TRANSPOSES) {
      const x = ta ? tf.transpose(a, [0, 2, 1]) : a;
      const y = tb ? b : tf.transpose(b, [0, 2, 1]);
      await assertNoLeaks(() => tf.matMul(x, y, ta, tb), { label: `matMul tA=${ta} tB=${tb}` });
      await assertNoLeaks(
        () => tf.fused.matMul({ a: x, b: y, transposeA: ta, transposeB: tb, bias, activation: 'relu' }),
        {
          label: `fused.matMul tA=${ta} tB=${tb}`,
        },
      );
      await assertNoLeaks(
        () => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.matMul(p, q, ta, tb)))([x, y]),
        { label: `matMul gradient tA=${ta} tB=${tb}` },
      );
      if (x !== a) x.dispose();
      if (y !== b) y.dispose();
    }
    expect(backend.numDataIds()).toBe(before);
    tf.dispose([a, b, bias]);
  });
});
