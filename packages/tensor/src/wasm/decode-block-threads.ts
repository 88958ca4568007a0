/**
 * The fused GPT-2 decode block (`decode-block-op.ts`) with its four products on every thread.
 *
 * The tfjs wasm backend's memory is not shared, so the workers cannot read its tensors. A decode step's
 * products are small (1-16 rows) but their B, the block's weights, is large and the same at every step:
 * copying it into the pool's shared memory per product would cost as much as the product. So the weights
 * are copied there once and stay (resident, keyed by the tensor's data id: tfjs tensors are immutable
 * and a changed weight, e.g. after an optimizer step, is a new tensor with a new data id), and the block
 * runs in the shared memory: LayerNorms, GELU and residuals on this thread, each product split by columns
 * among the threads (`sharedDirectGemm`). Only the activations cross between the memories: x in, q|k|v
 * out (the KV cache and the attention over it stay in the backend's memory), the attention output in,
 * the block's output out, a few KiB each.
 *
 * Same bits as the one-thread kernel: every element is computed by the same kernel with the same K
 * blocks (see `sharedDirectGemm`), and the other steps are the same module functions on the same values.
 */
import { util, type DataId, type TensorInfo } from '@tensorflow/tfjs-core';
import { gemmTuning, KC } from './gemm.js';
import { NR } from './gemm-kernels.js';
import { geluAt } from './fused-ops.js';
import { offsetOf, type WasmBackendLike } from './state.js';
import { runGpt2Block, type BlockSteps, type BlockWeightName } from './decode-block-steps.js';
import { hostCores, sharedDirectGemm, sharedKernels, type SharedKernels } from './threads.js';

/**
 * When the block's products go to the threads (tests lower both to reach the threaded path):
 * - `minMacs`: blocks with fewer multiply-adds (B * D * F, a quarter of the MLP's) stay on one thread: the
 *   products are too small to split;
 * - `minCores`: only on machines with at least this many cores. A decode step hands the threads a product
 *   every few tens of µs, so a worker must be running the moment one comes; with 2 cores, V8's own
 *   threads (garbage collection, compilation) often take the worker's core, the calling thread then
 *   waits for the worker's half, and decoding measured both slower and far more variable on 2 threads
 *   than on 1 (2-core AMD EPYC: tiny-l4 75-135 ms per `generate` against 70-82 ms).
 */
export const decodeThreadTuning = { minMacs: 1 << 16, minCores: 4 };

/** What the kernel hands over: sizes, and byte offsets on the backend's heap. */
export interface BlockOnHeap {
  B: number;
  D: number;
  F: number;
  eps: number;
  /** The block's input and output [B, D]. */
  x: number;
  y: number;
  /** [B, 3D]: where `attend` reads this step's q | k | v. */
  qkv: number;
  /** [B, D]: where `attend` leaves the attention output. */
  att: number;
  /** Writes k, v into the cache and runs the attention (on the backend's heap). */
  attend: () => void;
}

/** Resident copies of weights in the pool's memory, by data id (the map is dropped with the pool). */
let resident: { memory: WebAssembly.Memory; at: Map<DataId, number> } | undefined;

/**
 * Offset in the shared memory of a resident copy of `t` (copied on first use), or -1 where the shared
 * memory cannot hold it. When a copy is needed and some resident tensor has since been disposed (a model
 * updated by training, or freed), every copy is dropped and the live ones come back as they are used.
 */
function residentOffset(sk: SharedKernels, backend: WasmBackendLike, t: TensorInfo): number {
  if (resident?.memory !== sk.memory) {
    sk.reset();
    resident = { memory: sk.memory, at: new Map() };
  }
  const known = resident.at.get(t.dataId as DataId);
  if (known !== undefined) return known;
  if ([...resident.at.keys()].some((id) => !backend.dataIdMap.has(id))) {
    resident.at.clear();
    sk.reset();
  }
  const bytes = 4 * util.sizeFromShape(t.shape);
  const at = sk.alloc(bytes);
  if (at < 0) return -1;
  const src = offsetOf(backend, t.dataId as DataId);
  new Uint8Array(sk.memory.buffer).set(backend.wasm.HEAPU8.subarray(src, src + bytes), at);
  resident.at.set(t.dataId as DataId, at);
  return at;
}

/**
 * Runs the block with its products on the thread pool. Returns false (nothing done) where it should run on
 * one thread: one thread set or no worker up yet, a machine or block below `decodeThreadTuning`, more rows
 * than the one-thread path multiplies in place or widths that are not multiples of 8 (its panels: the
 * bits would differ), or weights that do not fit the shared memory.
 */
export function threadedGpt2Block(
  backend: WasmBackendLike,
  weights: Record<string, TensorInfo>,
  blk: BlockOnHeap,
): boolean {
  const { B, D, F, eps } = blk;
  const fits = B <= gemmTuning.directMaxRows && D % NR === 0 && F % NR === 0;
  if (!fits || B * D * F < decodeThreadTuning.minMacs || hostCores() < decodeThreadTuning.minCores)
    return false;
  const sk = sharedKernels();
  if (!sk) return false;
  const w = {} as Record<BlockWeightName, number>;
  for (const [name, t] of Object.entries(weights) as [BlockWeightName, TensorInfo][]) {
    w[name] = residentOffset(sk, backend, t);
    if (w[name] < 0) return false;
  }
  // Working memory past the resident weights: x, ln, qkv, att, tmp, fc, y, and 16 bytes for GELU's tail.
  const x = sk.scratch(4 * B * (9 * D + F) + 16);
  const o = {
    x,
    ln: x + 4 * B * D,
    qkv: x + 8 * B * D,
    att: x + 20 * B * D,
    tmp: x + 24 * B * D,
    fc: x + 28 * B * D,
  };
  const y = o.fc + 4 * B * F;
  const tile = y + 4 * B * D;
  const shared = () => new Uint8Array(sk.memory.buffer);
  const heap = () => backend.wasm.HEAPU8;
  /** `bytes` from `from` in one memory to `to` in the other. */
  const move = (src: () => Uint8Array, from: number, dst: () => Uint8Array, to: number, bytes: number) =>
    dst().set(src().subarray(from, from + bytes), to);
  const steps: BlockSteps = {
    k: sk.k,
    w: (name) => w[name],
    linear: (c, a, wName, bName, m, kk, n) => {
      sk.k.copy2d(c, 4 * n, w[bName], 0, m, 4 * n);
      sharedDirectGemm(m, n, kk, a, 4 * kk, w[wName], 4 * n, c, 4 * n, true, KC);
    },
    gelu: (at, n) => geluAt(sk.k, () => new Float32Array(sk.memory.buffer), tile, at, at, n),
    // The KV cache is on the backend's heap: q|k|v there, the attention back.
    attend: () => {
      move(shared, o.qkv, heap, blk.qkv, 12 * B * D);
      blk.attend();
      move(heap, blk.att, shared, o.att, 4 * B * D);
    },
  };
  move(heap, blk.x, shared, x, 4 * B * D);
  runGpt2Block(steps, { ...o, y }, B, D, F, eps);
  move(shared, y, heap, blk.y, 4 * B * D);
  return true;
}
