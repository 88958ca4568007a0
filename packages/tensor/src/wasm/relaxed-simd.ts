/**
 * Wasm relaxed SIMD (`f32x4.relaxed_madd`, a fused multiply-add on x86 with FMA and on ARM) for the GEMM
 * micro-kernels: used where the runtime validates it (Chromium; Node 20 only with
 * `--experimental-wasm-relaxed-simd`, later Node by default), else the plain `f32x4.mul` + `f32x4.add`.
 *
 * Whether a product uses FMA changes its rounding, so the choice is made once per process, the first time
 * a kernel module is assembled, and every module assembled afterwards (the backend's and the GEMM worker
 * threads', see `threads.ts`) uses the same one: results stay identical for any thread count.
 * `RELIGN_WASM_RELAXED=0` (env, Node) or `setWasmRelaxedSimd(false)` before the first wasm kernel runs
 * forces the plain path.
 */
import { assemble, Fn, uleb, V128 } from './emit.js';

/** The bytes of `f32x4.relaxed_madd` (a * b + c, stack [a, b, c]; relaxed-simd opcode 0xfd 0x105). */
export const RELAXED_MADD = [0xfd, ...uleb(0x105)];

let supported: boolean | undefined;
let requested: boolean | undefined;
let chosen: boolean | undefined;

/** Whether this runtime validates a module that uses `f32x4.relaxed_madd`. */
export function relaxedSimdSupported(): boolean {
  if (supported === undefined) {
    const f = new Fn('probe', []);
    const v = f.local(V128);
    f.get(v)
      .get(v)
      .get(v)
      .raw(...RELAXED_MADD)
      .drop();
    try {
      supported = WebAssembly.validate(assemble([f], { shared: false }));
    } catch {
      supported = false;
    }
  }
  return supported;
}

/** `RELIGN_WASM_RELAXED` (Node): true, false, or undefined when unset; throws on any other value. */
export function relaxedSimdEnv(): boolean | undefined {
  const value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[
    'RELIGN_WASM_RELAXED'
  ];
  if (value === undefined || value === '') return undefined;
  if (value === '0' || value === '1') return value === '1';
  throw new Error(
    `RELIGN_WASM_RELAXED must be 0 (plain SIMD) or 1 (relaxed SIMD where supported); got '${value}'`,
  );
}

/**
 * Asks for relaxed SIMD (`true`: where supported), the plain path (`false`), or the default (`undefined`:
 * `RELIGN_WASM_RELAXED`, else where supported). Only before the first wasm kernel module is assembled:
 * afterwards the choice is fixed for the process (so every thread computes the same sums).
 */
export function setWasmRelaxedSimd(on: boolean | undefined): void {
  const effective = (on ?? relaxedSimdEnv() ?? true) && relaxedSimdSupported();
  if (chosen !== undefined && chosen !== effective) {
    throw new Error(
      'setWasmRelaxedSimd: the wasm kernels were already assembled ' +
        `${chosen ? 'with' : 'without'} relaxed SIMD; call it before the wasm backend runs its first kernel`,
    );
  }
  requested = on;
}

/** Whether the wasm GEMM kernels use relaxed SIMD (fixed by the first call). */
export function wasmRelaxedSimd(): boolean {
  chosen ??= (requested ?? relaxedSimdEnv() ?? true) && relaxedSimdSupported();
  return chosen;
}
