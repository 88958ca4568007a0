/**
 * The page and the worker of threads.test.ts, one bundle: on the page's main thread it reports what the wasm GEMM
 * runs on there (one thread: a page may not block) and starts itself as a dedicated module worker, which runs the
 * same products on 1 and on 2 threads and posts back whether they are bit-identical.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { initBackend, setWasmThreads, wasmThreadsInfo, wasmThreadsReady } from '../../src/browser.js';

/** [A shape, B shape]: square, odd, batched; each large enough for the pool (minMacs, minMacsPerCopied). */
const SHAPES: [number[], number[]][] = [
  [
    [256, 256],
    [256, 256],
  ],
  [
    [300, 200],
    [200, 310],
  ],
  [
    [4, 128, 96],
    [4, 96, 160],
  ],
];

const g = globalThis as unknown as {
  DedicatedWorkerGlobalScope?: unknown;
  __result?: unknown;
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function inWorker(wasmBase: string) {
  wasm.setWasmPaths(wasmBase);
  const loadModule = async (specifier: string) => {
    if (specifier === '@tensorflow/tfjs-backend-wasm') return wasm;
    throw Object.assign(new Error(`${specifier} is not bundled`), { code: 'ERR_MODULE_NOT_FOUND' });
  };
  await initBackend('wasm', { loadModule, env: {} });
  const defaults = wasmThreadsInfo();
  const inputs = SHAPES.map(([a, b], i) => [
    tf.randomNormal(a, 0, 1, 'float32', 2 * i + 1),
    tf.randomNormal(b, 0, 1, 'float32', 2 * i + 2),
  ]);
  const products = async (threads: number) => {
    setWasmThreads(threads);
    const ready = await wasmThreadsReady();
    const before = wasmThreadsInfo().products;
    const outs = inputs.map(([a, b]) => tf.matMul(a!, b!));
    const values = await Promise.all(outs.map(async (o) => (await o.data()) as Float32Array));
    tf.dispose(outs);
    return { ready, pooled: wasmThreadsInfo().products - before, values };
  };
  const one = await products(1);
  const two = await products(2);
  // A woken worker takes some chunks of a product, unless the caller finished them all first: try a few times.
  for (let i = 0; i < 200 && wasmThreadsInfo().workerChunks === 0; i++) {
    tf.matMul(inputs[0]![0]!, inputs[0]![1]!).dispose();
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const info = wasmThreadsInfo();
  // The cpu backend's products, as a check that the values are right and not merely equal.
  await tf.setBackend('cpu');
  const cpu = await Promise.all(
    inputs.map(async ([a, b]) => {
      const c = tf.matMul(tf.tensor(await a!.data(), a!.shape), tf.tensor(await b!.data(), b!.shape));
      return (await c.data()) as Float32Array;
    }),
  );
  const maxRelErr = Math.max(
    ...cpu.map((want, i) => {
      let scale = 1;
      let diff = 0;
      want.forEach((w, j) => {
        scale = Math.max(scale, Math.abs(w));
        diff = Math.max(diff, Math.abs(w - one.values[i]![j]!));
      });
      return diff / scale;
    }),
  );
  return {
    crossOriginIsolated: globalThis.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
    tfjsThreads: wasm.getThreadsCount(),
    defaults,
    one: { ready: one.ready, pooled: one.pooled },
    two: { ready: two.ready, pooled: two.pooled },
    identical: one.values.map((v, i) => sameBytes(v, two.values[i]!)),
    maxRelErr,
    info,
  };
}

if (typeof g.DedicatedWorkerGlobalScope === 'function') {
  g.onmessage = (e: MessageEvent<{ wasmBase: string }>) => {
    inWorker(e.data.wasmBase).then(
      (result) => g.postMessage(result),
      (err: unknown) => g.postMessage({ error: String((err as Error)?.stack ?? err) }),
    );
  };
} else {
  // The page's main thread: it may not Atomics.wait, so relign stays on one thread here.
  const main = { crossOriginIsolated: globalThis.crossOriginIsolated, info: wasmThreadsInfo() };
  const worker = new Worker(import.meta.url, { type: 'module' });
  worker.onmessage = (e) => (g.__result = { main, worker: e.data });
  worker.onerror = (e) => (g.__result = { main, worker: { error: `worker failed to start: ${e.message}` } });
  worker.postMessage({ wasmBase: new URL('wasm/', location.href).href });
}
