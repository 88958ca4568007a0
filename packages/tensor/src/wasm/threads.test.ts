import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { assertNoLeaks } from '../testing/index.js';
import { activate, relErr, seeded } from './test-helpers.js';
import {
  getWasmThreads,
  setWasmThreads,
  stopWasmThreads,
  threadStats,
  threadTuning,
  wasmThreadsInfo,
  wasmThreadsReady,
} from './threads.js';

/** Odd shapes through every operand layout: transposes, batches, a broadcast batch, a fused bias. */
const cases: { name: string; a: number[]; b: number[]; ta?: boolean; tb?: boolean; bias?: number }[] = [
  { name: 'plain, rows split', a: [203, 131], b: [131, 97] },
  { name: 'plain, columns split', a: [67, 45], b: [45, 301] },
  { name: 'transposeA', a: [131, 203], b: [131, 97], ta: true },
  { name: 'transposeB', a: [203, 131], b: [97, 131], tb: true },
  { name: 'both transposed, K > KC', a: [517, 71], b: [89, 517], ta: true, tb: true },
  { name: 'batched', a: [5, 67, 45], b: [5, 45, 29] },
  { name: 'batch broadcast B', a: [3, 2, 70, 33], b: [2, 33, 41] },
  { name: 'fused row bias (accumulates onto C)', a: [203, 131], b: [131, 97], bias: 97 },
];

async function run(threads: number, data: Map<string, Float32Array>): Promise<Float32Array[]> {
  setWasmThreads(threads);
  expect(await wasmThreadsReady()).toBe(threads);
  const t = (shape: number[], key: string) => tf.tensor(data.get(key)!, shape);
  const outs = tf.tidy(() =>
    cases.map((c) => {
      const a = t(c.a, `${c.name}/a`);
      const b = t(c.b, `${c.name}/b`);
      if (c.bias === undefined) return tf.matMul(a, b, c.ta, c.tb);
      return tf.fused.matMul({
        a,
        b,
        transposeA: c.ta,
        transposeB: c.tb,
        bias: t([c.bias], `${c.name}/bias`),
      });
    }),
  );
  const values = await Promise.all(outs.map(async (o) => (await o.data()) as Float32Array));
  tf.dispose(outs);
  return values;
}

describe('wasm GEMM on worker threads', () => {
  const saved = { ...threadTuning };
  const data = new Map<string, Float32Array>();

  beforeAll(async () => {
    let seed = 1;
    for (const c of cases) {
      data.set(`${c.name}/a`, await seeded(c.a, seed++));
      data.set(`${c.name}/b`, await seeded(c.b, seed++));
      if (c.bias !== undefined) data.set(`${c.name}/bias`, await seeded([c.bias], seed++));
    }
    await activate('wasm');
    threadTuning.minMacs = 0; // every product of the cases goes to the pool
    threadTuning.minMacsPerCopied = 0;
    threadTuning.chunksPerThread = 3;
  });
  afterAll(async () => {
    Object.assign(threadTuning, saved);
    stopWasmThreads();
    await tf.setBackend('cpu');
  });

  it('gives bit-identical results for 1, 2, 3, 4 and more threads than cores, equal to the cpu backend', async () => {
    const one = await run(1, data);
    const productsBefore = threadStats.products;
    // More threads than cores: the OS deschedules some workers mid-job, and the caller (which blocks, never
    // spins) and the others take their chunks; the results do not change.
    const oversubscribed = availableParallelism() + 2;
    const counts = [...new Set([2, 3, 4, oversubscribed])];
    for (const threads of counts) {
      const got = await run(threads, data);
      got.forEach((g, i) => {
        expect(
          Buffer.from(g.buffer).equals(Buffer.from(one[i]!.buffer)),
          `${cases[i]!.name}, ${threads} threads`,
        ).toBe(true);
      });
    }
    expect(threadStats.products - productsBefore).toBeGreaterThanOrEqual(counts.length * cases.length);
    expect(wasmThreadsInfo()).toMatchObject({ threads: oversubscribed, host: 'worker_threads' });
    expect(wasmThreadsInfo().workersUp).toBe(oversubscribed - 1);

    await tf.setBackend('cpu');
    const want = tf.tidy(() =>
      cases.map((c) => {
        const a = tf.tensor(data.get(`${c.name}/a`)!, c.a);
        const b = tf.tensor(data.get(`${c.name}/b`)!, c.b);
        const p = tf.matMul(a, b, c.ta, c.tb);
        return c.bias === undefined ? p : tf.add(p, tf.tensor(data.get(`${c.name}/bias`)!));
      }),
    );
    const wantData = want.map((w) => w.dataSync());
    tf.dispose(want);
    await activate('wasm');
    one.forEach((o, i) => expect(relErr(o, wantData[i]!), cases[i]!.name).toBeLessThan(1e-5));
  });

  it('the workers do take chunks (not only the calling thread), and nothing leaks', async () => {
    setWasmThreads(2);
    await wasmThreadsReady();
    const a = tf.tensor(data.get(`${cases[0]!.name}/a`)!, cases[0]!.a);
    const b = tf.tensor(data.get(`${cases[0]!.name}/b`)!, cases[0]!.b);
    const before = threadStats.workerChunks;
    threadTuning.chunksPerThread = 64; // many small chunks: a woken worker finds some left
    for (let i = 0; i < 200 && threadStats.workerChunks === before; i++) {
      tf.matMul(a, b).dispose();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    threadTuning.chunksPerThread = 3;
    expect(threadStats.workerChunks).toBeGreaterThan(before);
    await assertNoLeaks(() => tf.matMul(a, b), { label: 'threaded matMul' });
    tf.dispose([a, b]);
  });

  it('keeps small-K products (copies would eat the gain) and 1-thread runs off the pool', async () => {
    setWasmThreads(2);
    await wasmThreadsReady();
    Object.assign(threadTuning, saved);
    const [a, b] = [tf.randomNormal([64, 64, 32]), tf.randomNormal([64, 32, 64])];
    const [c, d] = [tf.randomNormal([512, 256]), tf.randomNormal([256, 256])];
    const before = threadStats.products;
    tf.matMul(a, b).dispose(); // 8.4M multiply-adds, 16 per float copied
    expect(threadStats.products).toBe(before);
    tf.matMul(c, d).dispose(); // 33.5M, 102 per float copied
    expect(threadStats.products).toBe(before + 1);
    threadTuning.minMacs = 0;
    threadTuning.minMacsPerCopied = 0;
    tf.dispose([a, b, c, d]);
  });

  it('defaults to every core; RELIGN_THREADS sets it; a bad value is an error that names it', async () => {
    const env = process.env['RELIGN_THREADS'];
    try {
      for (const [value, want] of [
        [undefined, availableParallelism()],
        ['', availableParallelism()],
        ['3', 3],
        ['zero', /RELIGN_THREADS must be a whole number >= 1 \(got 'zero'\)/],
        ['0', /RELIGN_THREADS must be/],
      ] as const) {
        if (value === undefined) delete process.env['RELIGN_THREADS'];
        else process.env['RELIGN_THREADS'] = value;
        vi.resetModules(); // a fresh module reads the variable again
        const fresh = await import('./threads.js');
        if (typeof want === 'number') expect(fresh.getWasmThreads()).toBe(want);
        else expect(() => fresh.getWasmThreads()).toThrow(want);
      }
    } finally {
      if (env === undefined) delete process.env['RELIGN_THREADS'];
      else process.env['RELIGN_THREADS'] = env;
    }
  });

  it('setWasmThreads validates its argument; 1 thread leaves the pool unused', async () => {
    expect(() => setWasmThreads(0)).toThrow(/whole number >= 1/);
    expect(() => setWasmThreads(1.5)).toThrow(/whole number >= 1/);
    setWasmThreads(1);
    expect(getWasmThreads()).toBe(1);
    expect(wasmThreadsInfo()).toMatchObject({ threads: 1, host: 'none', workersUp: 0 });
    const before = threadStats.products;
    await run(1, data);
    expect(threadStats.products).toBe(before);
  });
});
