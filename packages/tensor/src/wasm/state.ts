/**
 * What relign's wasm kernels need from `@tensorflow/tfjs-backend-wasm`'s `BackendWasm`, typed here
 * so this package never imports the wasm backend statically (it is loaded only when selected), and
 * the per-backend state (the assembled kernels and their scratch memory).
 */
import type { DataId, DataType, TensorInfo } from '@tensorflow/tfjs-core';
import { instantiateKernels, MR, type KernelExports } from './kernel-module.js';

export interface EmscriptenModule {
  HEAPU8: Uint8Array;
  HEAP32: Int32Array;
  HEAPF32: Float32Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  asm?: Record<string, unknown>;
  wasmExports?: Record<string, unknown>;
  wasmMemory?: WebAssembly.Memory;
}

export interface WasmBackendLike {
  wasm: EmscriptenModule;
  dataIdMap: { get(dataId: DataId): { memoryOffset: number } | undefined; has(dataId: DataId): boolean };
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

export interface KernelState {
  k: KernelExports;
  /** Scratch for packed B; grown on demand (the old block is freed). */
  scratch: number;
  scratchBytes: number;
  /** 32*MR bytes for partial register tiles. */
  tile: number;
}

const states = new WeakMap<object, KernelState | null>();

/** The backend's WebAssembly.Memory, wherever this emscripten build exposes it. */
function findMemory(wasm: EmscriptenModule): WebAssembly.Memory | undefined {
  if (wasm.wasmMemory instanceof WebAssembly.Memory) return wasm.wasmMemory;
  for (const exportsObj of [wasm.asm, wasm.wasmExports]) {
    if (!exportsObj) continue;
    const named = exportsObj['memory'];
    if (named instanceof WebAssembly.Memory) return named;
    for (const value of Object.values(exportsObj)) {
      if (value instanceof WebAssembly.Memory) return value;
    }
  }
  return undefined;
}

/**
 * The kernels for `backend`, assembled on first use; null where they cannot run (no wasm SIMD, or a
 * build that does not expose its memory), in which case callers fall back to the stock kernels.
 */
export function kernelState(backend: WasmBackendLike): KernelState | null {
  const known = states.get(backend);
  if (known !== undefined) return known;
  let state: KernelState | null = null;
  try {
    const memory = findMemory(backend.wasm);
    if (memory && memory.buffer === backend.wasm.HEAPU8.buffer) {
      const k = instantiateKernels(memory);
      const tile = backend.wasm._malloc(32 * MR) >>> 0;
      state = { k, scratch: 0, scratchBytes: 0, tile };
    }
  } catch {
    state = null;
  }
  states.set(backend, state);
  return state;
}

/** Makes sure `state.scratch` holds at least `bytes` bytes. */
export function ensureScratch(backend: WasmBackendLike, state: KernelState, bytes: number): number {
  if (state.scratchBytes < bytes) {
    if (state.scratch) backend.wasm._free(state.scratch);
    state.scratch = backend.wasm._malloc(bytes) >>> 0;
    if (state.scratch === 0) {
      state.scratchBytes = 0;
      throw new Error(`relign wasm kernels: could not allocate ${bytes} bytes of scratch memory`);
    }
    state.scratchBytes = bytes;
  }
  return state.scratch;
}

/** Byte offset of a tensor's data on the wasm heap. */
export function offsetOf(backend: WasmBackendLike, dataId: DataId): number {
  const data = backend.dataIdMap.get(dataId);
  if (!data) throw new Error('relign wasm kernels: tensor data is not on the wasm backend');
  return data.memoryOffset >>> 0;
}
