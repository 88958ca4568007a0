import v8 from 'node:v8';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { registerWasmKernels } from './index.js';
import { kernelModuleBytes, MR, type KernelExports } from './kernel-module.js';
import { relaxedSimdSupported, wasmRelaxedSimd } from './relaxed-simd.js';
import { activate, relErr, seeded } from './test-helpers.js';
import { setWasmThreads, stopWasmThreads, wasmThreadsReady } from './threads.js';

// Node 20 validates relaxed SIMD only behind this V8 flag (Node 22+ and Chromium by default). Set here,
// before any kernel module is assembled, so this file's process covers the relaxed path; the other test
// files run without it and cover the plain path.
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

/** Both module variants on one fresh memory. */
function instances(): { f32: Float32Array; plain: KernelExports; relaxed: KernelExports } {
  const memory = new WebAssembly.Memory({ initial: 64 });
  const make = (relaxed: boolean) =>
    new WebAssembly.Instance(new WebAssembly.Module(kernelModuleBytes(false, MR, relaxed)), {
      env: { memory },
    }).exports as unknown as KernelExports;
  return { f32: new Float32Array(memory.buffer), plain: make(false), relaxed: make(true) };
}

describe('wasm relaxed SIMD (f32x4.relaxed_madd) in the GEMM micro-kernels', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    stopWasmThreads();
    await tf.setBackend('cpu');
  });

  it('is detected, and both variants are accurate, deterministic and actually differ (gemm and gemm_nt)', () => {
    expect(relaxedSimdSupported()).toBe(true);
    const { f32, plain, relaxed } = instances();
    const [m, n, k] = [13, 24, 37]; // partial row tiles, k not a multiple of 4
    const [a, b, c, tile] = [1024, 8192, 16384, 32768];
    for (let i = 0; i < m * k; i++) f32[a / 4 + i] = Math.sin(i * 1.3);
    for (let i = 0; i < k * n; i++) f32[b / 4 + i] = Math.cos(i * 0.7);
    const want = new Float64Array(m * n);
    const wantNt = new Float64Array(m * m); // A A^T
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++)
        for (let p = 0; p < k; p++) want[i * n + j]! += f32[a / 4 + i * k + p]! * f32[b / 4 + p * n + j]!;
      for (let j = 0; j < m; j++)
        for (let p = 0; p < k; p++) wantNt[i * m + j]! += f32[a / 4 + i * k + p]! * f32[a / 4 + j * k + p]!;
    }
    const results = (K: KernelExports) => {
      K.gemm(m, n, k, a, k * 4, 4, b, n * 4, 32, c, n * 4, 0, tile);
      const g = f32.slice(c / 4, c / 4 + m * n);
      K.gemm_nt(1, m, m, k, a, k * 4, 0, a, k * 4, 0, c, m * 4, 0, 0);
      return [g, f32.slice(c / 4, c / 4 + m * m)] as const;
    };
    const [p1, pn1] = results(plain);
    const [r1, rn1] = results(relaxed);
    const [r2, rn2] = results(relaxed);
    expect(relErr(p1, want)).toBeLessThan(1e-6);
    expect(relErr(r1, want)).toBeLessThan(1e-6);
    expect(relErr(pn1, wantNt)).toBeLessThan(1e-6);
    expect(relErr(rn1, wantNt)).toBeLessThan(1e-6);
    expect(Array.from(r2)).toEqual(Array.from(r1)); // deterministic per path
    expect(Array.from(rn2)).toEqual(Array.from(rn1));
    // Fused multiply-adds round once: some sums differ from the plain path (every x86-64 with FMA, ARM64).
    expect(p1.some((v, i) => v !== r1[i])).toBe(true);
    expect(pn1.some((v, i) => v !== rn1[i])).toBe(true);
  });

  it('is chosen once per process: RELIGN_WASM_RELAXED=0 or setWasmRelaxedSimd(false) forces the plain path', async () => {
    const fresh = async () => {
      vi.resetModules();
      return import('./relaxed-simd.js');
    };
    let mod = await fresh();
    expect(mod.wasmRelaxedSimd()).toBe(true);
    expect(() => mod.setWasmRelaxedSimd(false)).toThrow(/already assembled with relaxed SIMD/);
    vi.stubEnv('RELIGN_WASM_RELAXED', '0');
    mod = await fresh();
    expect(mod.wasmRelaxedSimd()).toBe(false);
    vi.stubEnv('RELIGN_WASM_RELAXED', 'yes');
    mod = await fresh();
    expect(() => mod.wasmRelaxedSimd()).toThrow(/RELIGN_WASM_RELAXED must be 0/);
    expect(() => registerWasmKernels()).toThrow(/RELIGN_WASM_RELAXED must be 0/); // not a silent fallback
    vi.unstubAllEnvs();
    mod = await fresh();
    mod.setWasmRelaxedSimd(false);
    expect(mod.wasmRelaxedSimd()).toBe(false);
    mod.setWasmRelaxedSimd(false); // the same choice again is fine
  });

  it('the backend and its GEMM threads use the same variant: 1 and 2 threads give identical products', async () => {
    await activate('wasm');
    const [x, y] = [await seeded([203, 131], 1), await seeded([131, 97], 2)];
    const product = async (threads: number) => {
      setWasmThreads(threads);
      expect(await wasmThreadsReady()).toBe(threads);
      const out = tf.tidy(() => tf.matMul(tf.tensor2d(x, [203, 131]), tf.tensor2d(y, [131, 97])));
      const values = (await out.data()) as Float32Array;
      out.dispose();
      return values;
    };
    const one = await product(1);
    expect(wasmRelaxedSimd()).toBe(true);
    expect(Array.from(await product(2))).toEqual(Array.from(one));
    const want = await (async () => {
      await activate('cpu');
      const t = tf.matMul(tf.tensor2d(x, [203, 131]), tf.tensor2d(y, [131, 97]));
      const v = (await t.data()) as Float32Array;
      t.dispose();
      return v;
    })();
    expect(relErr(one, want)).toBeLessThan(1e-5);
  });
});
