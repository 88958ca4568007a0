/**
 * The `RelignAdamW` tfjs kernel on wasm: one call of the `sum_squares` and `adamw` wasm functions
 * (`adamw-kernel.ts`) for every parameter, and the two ways `optim/adamw.ts` calls it:
 * {@link fusedAdamWPrepare} (gradient norm, clip factor and the guard's look-ahead; nothing written) and
 * {@link fusedAdamWWrite} (the new parameters and moments).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { CLIP_NORM_EPS } from '../numerics/clip-grad-norm.js';
import { ADAMW_ENTRY_BYTES as ENTRY } from './adamw-kernel.js';
import { kernelState, offsetOf, type WasmBackendLike } from './state.js';

export const ADAMW_KERNEL = 'RelignAdamW';

/** Elements per fused update call: 16M floats, so at most 192 MiB of new p, m, v before assignment. */
let groupElements = 1 << 24;

/** The most elements one fused update call covers (`AdamW` splits larger models into several calls). */
export function fusedGroupElements(): number {
  return groupElements;
}

/** Sets {@link fusedGroupElements} (tests cover the split with small models); returns the previous value. */
export function setFusedGroupElements(n: number): number {
  const prev = groupElements;
  groupElements = n;
  return prev;
}

/** The constants of one AdamW step, rounded to f32 by the kernel as tfjs rounds its scalars. */
export interface AdamWConstants {
  beta1: number;
  beta2: number;
  /** 1 − β1ᵗ and 1 − β2ᵗ. */
  bc1: number;
  bc2: number;
  eps: number;
  lr: number;
}

interface AdamWAttrs extends AdamWConstants {
  /** Per entry: the factor p is multiplied by (1 − lr·wd, or exactly 1 for no decay). */
  decay: number[];
  write: boolean;
  /** Set: compute the gradient norm and clip factor (no `scale` input), adding the entries in `order`. */
  maxNorm?: number;
  order?: number[];
}

/**
 * The global norm and the clip factor from per-entry sums of squares, with every float32 rounding of
 * `clipByGlobalNorm`'s ops (Math.fround after each double operation is exact for +, /, sqrt of floats).
 */
function normAndScale(sums: Float32Array, order: number[], maxNorm: number): [number, number] {
  let acc = 0;
  for (const k of order) acc = Math.fround(acc + sums[k]!);
  const norm = Math.fround(Math.sqrt(acc));
  const q = Math.fround(Math.fround(maxNorm) / Math.fround(norm + Math.fround(CLIP_NORM_EPS)));
  // A non-finite norm leaves the gradients unscaled, for the caller to detect and skip the step.
  return [norm, Number.isFinite(norm) ? Math.min(1, q) : 1];
}

/**
 * The wasm `RelignAdamW` kernel. Inputs `p<i>`, `g<i>`, `m<i>`, `v<i>` per entry, and `scale` (a float32
 * scalar) unless `maxNorm` is set; outputs the stats [count, 4], with `maxNorm` the gradient norm and clip
 * factor (scalars), then with `write` p', m', v' of each entry. Always new tensors: tfjs tensors are
 * immutable, and a parameter's data may be shared (a `clone()` of it shares its buffer).
 */
export function adamwKernel({
  inputs,
  backend,
  attrs,
}: {
  inputs: NamedTensorInfoMap;
  backend: WasmBackendLike;
  attrs: AdamWAttrs;
}): TensorInfo[] {
  const state = kernelState(backend);
  if (!state) throw new Error(`${ADAMW_KERNEL}: relign wasm kernels are unavailable on this backend`);
  const count = attrs.decay.length;
  const ptr = (t: TensorInfo) => offsetOf(backend, t.dataId as DataId);
  const stats = backend.makeOutput([count, 4], 'float32');
  const clip = attrs.maxNorm === undefined ? [] : [0, 1].map(() => backend.makeOutput([], 'float32'));
  const outs: TensorInfo[] = [];
  if (attrs.write) {
    for (let k = 0; k < count; k++) {
      for (const x of ['p', 'm', 'v']) outs.push(backend.makeOutput(inputs[`${x}${k}`]!.shape, 'float32'));
    }
  }
  const block = backend.wasm._malloc(count * ENTRY + 32) >>> 0;
  if (block === 0) throw new Error(`${ADAMW_KERNEL}: could not allocate its ${count}-entry table`);
  try {
    // Views after every allocation: a growing heap replaces the buffer.
    const i32 = backend.wasm.HEAP32;
    const f32 = backend.wasm.HEAPF32;
    for (let k = 0; k < count; k++) {
      const w = (block + k * ENTRY) >>> 2;
      const [p, g, m, v] = ['p', 'g', 'm', 'v'].map((x) => inputs[`${x}${k}`]!);
      i32[w] = ptr(p!);
      i32[w + 1] = ptr(g!);
      i32[w + 2] = ptr(m!);
      i32[w + 3] = ptr(v!);
      for (let o = 0; o < 3; o++) i32[w + 4 + o] = attrs.write ? ptr(outs[3 * k + o]!) : 0;
      i32[w + 7] = tf.util.sizeFromShape(p!.shape);
      f32[w + 8] = attrs.decay[k]!;
    }
    const c = (block + count * ENTRY) >>> 2;
    const { beta1, beta2, bc1, bc2, eps, lr } = attrs;
    // 1 − β in double, then rounded: what `tf.mul(g, 1 - beta1)` makes of its scalar.
    f32.set([beta1, 1 - beta1, beta2, 1 - beta2, bc1, bc2, eps, lr], c);
    let scale: number;
    if (attrs.maxNorm === undefined) scale = ptr(inputs['scale']!);
    else {
      // The per-entry sums go to the stats block first (the update below overwrites it).
      const s = ptr(stats);
      state.k.sum_squares(block, count, s);
      const [norm, factor] = normAndScale(
        f32.subarray(s >>> 2, (s >>> 2) + count),
        attrs.order!,
        attrs.maxNorm,
      );
      f32[ptr(clip[0]!) >>> 2] = norm;
      f32[ptr(clip[1]!) >>> 2] = factor;
      scale = ptr(clip[1]!);
    }
    state.k.adamw(block, count, c << 2, ptr(stats), scale, attrs.write ? 1 : 0);
  } finally {
    backend.wasm._free(block);
  }
  return [stats, ...clip, ...outs];
}

/** One parameter of a fused step. */
export interface AdamWEntry {
  p: tf.Tensor;
  g: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
  /** 1 − lr·wd, or 1 for a parameter that does not decay. */
  decay: number;
}

/** Whether the fused AdamW kernel runs on the active backend for these (float32) tensors. */
export function fusedAdamWAvailable(tensors: Iterable<tf.Tensor>): boolean {
  if (tf.getBackend() !== 'wasm' || !tf.getKernel(ADAMW_KERNEL, 'wasm')) return false;
  // Anything else (a disposed or non-float32 gradient) takes the unfused path, whose checks name the problem.
  for (const t of tensors) {
    if (!(t instanceof tf.Tensor) || t.isDisposed || t.dtype !== 'float32') return false;
  }
  return kernelState(tf.backend() as unknown as WasmBackendLike) !== null;
}

function run(
  entries: AdamWEntry[],
  constants: AdamWConstants,
  extra: { scale: tf.Tensor; write: true } | { maxNorm: number; order: number[]; write: false },
): tf.Tensor[] {
  const inputs: tf.NamedTensorMap = 'scale' in extra ? { scale: extra.scale } : {};
  entries.forEach((x, k) => {
    inputs[`p${k}`] = x.p;
    inputs[`g${k}`] = x.g;
    inputs[`m${k}`] = x.m;
    inputs[`v${k}`] = x.v;
  });
  const { scale: _, ...rest } = extra as { scale?: tf.Tensor };
  const attrs = { ...constants, ...rest, decay: entries.map((x) => x.decay) };
  return tf.engine().runKernel(ADAMW_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
}

/**
 * The look-ahead of a step (one kernel call, nothing written): the gradient norm and clip factor (float32
 * scalars, bit-identical to `clipByGlobalNorm`'s for gradients added in `order`, indices into `entries`),
 * and the guard's `stats` [count, 4] of the update that factor gives (see `adamw-kernel.ts`).
 */
export function fusedAdamWPrepare(
  entries: AdamWEntry[],
  constants: AdamWConstants,
  maxNorm: number,
  order: number[],
): { stats: tf.Tensor; norm: tf.Scalar; scale: tf.Scalar } {
  const [stats, norm, scale] = run(entries, constants, { maxNorm, order, write: false });
  return { stats: stats!, norm: norm as tf.Scalar, scale: scale as tf.Scalar };
}

/** The step itself (one kernel call): new p, m, v per entry (the caller owns them), gradients times `scale`. */
export function fusedAdamWWrite(
  entries: AdamWEntry[],
  constants: AdamWConstants,
  scale: tf.Tensor,
): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor }[] {
  const [stats, ...outs] = run(entries, constants, { scale, write: true });
  stats!.dispose();
  return entries.map((_, k) => ({ p: outs[3 * k]!, m: outs[3 * k + 1]!, v: outs[3 * k + 2]! }));
}
