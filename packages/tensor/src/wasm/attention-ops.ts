/**
 * Attention on the wasm backend in fewer kernels (see `attention-kernels.ts`), and the in-place row write
 * of a preallocated KV cache. Every other backend (and non-float32 input) keeps the unfused tfjs ops.
 *
 * - {@link fusedMaskedSoftmax}: softmax(scores + bias) as one kernel forward and one backward (the
 *   unfused form is an Add and a Softmax forward, and 4-5 kernels backward).
 * - {@link fusedPrefixAttention}: a whole attention for a few query rows (a decode step) against the first
 *   `length` positions of K/V, read in place: no slice and no concat of the cache, one kernel instead of
 *   five. No gradient (decoding only).
 * - {@link writeRowsInPlace}: copies a step's keys or values into a preallocated cache tensor.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { kernelState, offsetOf, type WasmBackendLike } from './state.js';

export const MASKED_SOFTMAX_KERNEL = 'RelignMaskedSoftmax';
export const MASKED_SOFTMAX_GRAD_KERNEL = 'RelignMaskedSoftmaxGrad';
export const PREFIX_ATTENTION_KERNEL = 'RelignPrefixAttention';

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: WasmBackendLike;
  attrs?: { length?: number; scale?: number };
}

const ptrOf = (backend: WasmBackendLike, t: TensorInfo) => offsetOf(backend, t.dataId as DataId);

function stateOf(backend: WasmBackendLike, name: string) {
  const state = kernelState(backend);
  if (!state) throw new Error(`${name}: relign wasm kernels are unavailable on this backend`);
  return state;
}

/** The wasm `RelignMaskedSoftmax` kernel: x [B, H, T, n], bias [B or 1, 1, T, n]. */
export function maskedSoftmaxKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const { x, bias } = inputs as { x: TensorInfo; bias: TensorInfo };
  const state = stateOf(backend, MASKED_SOFTMAX_KERNEL);
  const [B, H, T, n] = x.shape as [number, number, number, number];
  const out = backend.makeOutput(x.shape, 'float32');
  if (B * H * T * n === 0) return out;
  const biasBs = bias.shape[0] === 1 ? 0 : T * n * 4;
  state.k.masked_softmax(ptrOf(backend, out), ptrOf(backend, x), ptrOf(backend, bias), B, H, T, n, biasBs);
  return out;
}

/** The wasm `RelignMaskedSoftmaxGrad` kernel: dy and p (the forward's output) of one shape. */
export function maskedSoftmaxGradKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const { dy, p } = inputs as { dy: TensorInfo; p: TensorInfo };
  const state = stateOf(backend, MASKED_SOFTMAX_GRAD_KERNEL);
  const n = p.shape[p.shape.length - 1]!;
  const out = backend.makeOutput(p.shape, 'float32');
  const size = tf.util.sizeFromShape(p.shape);
  if (size === 0) return out;
  state.k.masked_softmax_grad(ptrOf(backend, out), ptrOf(backend, dy), ptrOf(backend, p), size / n, n);
  return out;
}

/**
 * The wasm `RelignPrefixAttention` kernel: q [B, Hkv, R, dh], k and v [B, Hkv, cap, dh] of which the
 * first `length` positions are used, optional bias [B or 1, 1, R or 1, length]. @returns [B, Hkv, R, dh].
 */
export function prefixAttentionKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { q, k, v, bias } = inputs as { q: TensorInfo; k: TensorInfo; v: TensorInfo; bias?: TensorInfo };
  const state = stateOf(backend, PREFIX_ATTENTION_KERNEL);
  const [B, Hkv, R, dh] = q.shape as [number, number, number, number];
  const cap = k.shape[2]!;
  const length = attrs?.length ?? cap;
  const out = backend.makeOutput(q.shape, 'float32');
  if (B * Hkv * R * dh === 0) return out;
  const scores = backend.makeOutput([length], 'float32');
  const biasBs = bias === undefined || bias.shape[0] === 1 ? 0 : bias.shape[2]! * length * 4;
  const biasRs = bias === undefined || bias.shape[2] === 1 ? 0 : length * 4;
  const p = (t: TensorInfo) => ptrOf(backend, t);
  state.k.prefix_attention(
    p(out),
    p(q),
    p(k),
    p(v),
    bias === undefined ? 0 : p(bias),
    p(scores),
    B,
    Hkv,
    R,
    length,
    cap,
    dh,
    attrs?.scale ?? 1,
    biasBs,
    biasRs,
    bias === undefined ? 0 : 1,
  );
  backend.disposeData(scores.dataId as DataId);
  return out;
}

/** Whether relign's wasm kernels run on the active backend (and `kernel` is registered there). */
function wasmKernels(kernel?: string): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  if (kernel !== undefined && !tf.getKernel(kernel, 'wasm')) return false;
  return kernelState(tf.backend() as unknown as WasmBackendLike) !== null;
}

/**
 * `softmax(scores + bias)` over the last axis: one kernel (and one for its gradient) on wasm, `tf.add` then
 * `tf.softmax` elsewhere (or for shapes other than the attention ones below).
 *
 * @param scores [B, H, T, n] float32; @param bias [B or 1, 1, T, n] float32 (0 or a large negative value
 *   such as -1e9 per key). Differentiable in both (the bias's gradient, the scores' summed over the axes
 *   it broadcasts along, is computed only when asked for: a mask is never trained).
 */
export function fusedMaskedSoftmax<T extends tf.Tensor>(scores: T, bias: tf.Tensor): T {
  const [B, H, T, n] = scores.shape;
  const fits =
    scores.rank === 4 &&
    bias.rank === 4 &&
    (bias.shape[0] === 1 || bias.shape[0] === B) &&
    bias.shape[1] === 1 &&
    bias.shape[2] === T &&
    bias.shape[3] === n &&
    H !== undefined;
  if (
    !fits ||
    scores.dtype !== 'float32' ||
    bias.dtype !== 'float32' ||
    !wasmKernels(MASKED_SOFTMAX_KERNEL)
  ) {
    return tf.tidy(() => tf.softmax(tf.add(scores, bias))) as T;
  }
  // biasRows: for the bias gradient (summed over the batch when the bias has one row).
  const attrs = { biasRows: bias.shape[0]! };
  return tf.engine().runKernel(MASKED_SOFTMAX_KERNEL, { x: scores, bias }, attrs) as T;
}

/**
 * Rows of queries attending over the first `length` key positions of k/v, in one wasm kernel that reads k
 * and v in place: `softmax(q k[:, :, :length]^T * scale + bias) v[:, :, :length]`. For decoding (no
 * gradient is registered): returns null where it cannot run (not wasm, not float32, or a gradient tape
 * recording), and the caller uses the unfused ops.
 *
 * @param q [B, Hkv, R, dh]; @param k [B, Hkv, cap, dh]; @param v like k; @param bias [B or 1, 1, R or 1,
 *   length] or undefined (every key allowed); @param length in [1, cap].
 */
export function fusedPrefixAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor4D | undefined,
  length: number,
  scale: number,
): tf.Tensor4D | null {
  const [B, Hkv, R, dh] = q.shape;
  const cap = k.shape[2];
  if (
    k.shape[0] !== B ||
    k.shape[1] !== Hkv ||
    k.shape[3] !== dh ||
    !tf.util.arraysEqual(k.shape, v.shape) ||
    !Number.isInteger(length) ||
    length < 1 ||
    length > cap
  ) {
    throw new Error(
      `fusedPrefixAttention: q ${JSON.stringify(q.shape)}, k ${JSON.stringify(k.shape)}, v ` +
        `${JSON.stringify(v.shape)} and length ${length} do not fit (k and v [B, Hkv, cap, dh] like q, ` +
        `1 <= length <= cap)`,
    );
  }
  if (
    bias !== undefined &&
    ((bias.shape[0] !== 1 && bias.shape[0] !== B) ||
      bias.shape[1] !== 1 ||
      (bias.shape[2] !== 1 && bias.shape[2] !== R) ||
      bias.shape[3] !== length)
  ) {
    throw new Error(
      `fusedPrefixAttention: bias ${JSON.stringify(bias.shape)} must be [${B} or 1, 1, ${R} or 1, ${length}]`,
    );
  }
  const tensors = bias === undefined ? [q, k, v] : [q, k, v, bias];
  if (tensors.some((t) => t.dtype !== 'float32')) return null;
  if (tf.engine().state.gradientDepth > 0 || !wasmKernels(PREFIX_ATTENTION_KERNEL)) return null;
  const inputs: tf.NamedTensorMap = bias === undefined ? { q, k, v } : { q, k, v, bias };
  return tf.engine().runKernel(PREFIX_ATTENTION_KERNEL, inputs, { length, scale }) as tf.Tensor4D;
}

/** Whether {@link writeRowsInPlace} can run (the wasm backend with relign's kernels is active). */
export function inPlaceWritesAvailable(): boolean {
  return wasmKernels();
}

/**
 * Copies src [B, H, T, dh] into positions [position, position + T) of dst [B, H, cap, dh], IN PLACE: dst's
 * memory changes under every tensor that shares it. Only for a tensor that one owner keeps to itself and
 * whose written positions no reader has seen (a preallocated KV cache: see @relign/lm's kv-cache.ts).
 * wasm only ({@link inPlaceWritesAvailable}); both tensors float32 on the active wasm backend.
 */
export function writeRowsInPlace(dst: tf.Tensor4D, src: tf.Tensor4D, position: number): void {
  const [B, H, cap, dh] = dst.shape;
  const T = src.shape[2];
  if (
    src.shape[0] !== B ||
    src.shape[1] !== H ||
    src.shape[3] !== dh ||
    !Number.isInteger(position) ||
    position < 0 ||
    position + T > cap
  ) {
    throw new Error(
      `writeRowsInPlace: cannot write ${JSON.stringify(src.shape)} at position ${position} of ` +
        `${JSON.stringify(dst.shape)} (same B, H, dh; position + T <= capacity)`,
    );
  }
  if (dst.dtype !== 'float32' || src.dtype !== 'float32' || !wasmKernels()) {
    throw new Error('writeRowsInPlace: needs float32 tensors on the wasm backend with relign kernels');
  }
  const backend = tf.backend() as unknown as WasmBackendLike;
  const state = kernelState(backend)!;
  const rowBytes = T * dh * 4;
  if (B * H * rowBytes === 0) return;
  const d = offsetOf(backend, dst.dataId as DataId) + position * dh * 4;
  state.k.copy2d(d, cap * dh * 4, offsetOf(backend, src.dataId as DataId), rowBytes, B * H, rowBytes);
}

function registerGradients(): void {
  if (tf.getGradient(MASKED_SOFTMAX_KERNEL)) return;
  tf.registerGradient({
    kernelName: MASKED_SOFTMAX_KERNEL,
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [p] = saved as [tf.Tensor];
      const g = dy as tf.Tensor;
      const dx = () =>
        tf.getBackend() === 'wasm' && tf.getKernel(MASKED_SOFTMAX_GRAD_KERNEL, 'wasm')
          ? (tf.engine().runKernel(MASKED_SOFTMAX_GRAD_KERNEL, { dy: g, p }) as tf.Tensor)
          : tf.mul(tf.sub(g, tf.sum(tf.mul(g, p), -1, true)), p);
      return {
        x: dx,
        // The bias is a mask (never trained); its gradient is given for completeness: dx summed over the
        // axes it was broadcast along (heads, and the batch when it has one row).
        bias: () => {
          const s = tf.sum(dx(), 1, true);
          return (attrs as { biasRows?: number }).biasRows === 1 ? tf.sum(s, 0, true) : s;
        },
      };
    },
  });
}

registerGradients();
