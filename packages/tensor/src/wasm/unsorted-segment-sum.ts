/**
 * `UnsortedSegmentSum` for the wasm backend, which has none; tfjs needs it for the gradient of
 * `tf.gather` (embedding lookups).
 *
 * As tfjs's op documents it: x of shape [d0, ...rest], segmentIds a 1-D int32 tensor of length d0;
 * the output has shape [numSegments, ...rest] and row i of x is added to output row segmentIds[i].
 * Ids outside [0, numSegments) are dropped (as on cpu). Output rows no id points at are exactly 0.
 * Data may be float32 or int32 (the output keeps x's dtype).
 */
import { util, type DataId, type TensorInfo } from '@tensorflow/tfjs-core';
import { kernelState, offsetOf, type WasmBackendLike } from './state.js';

interface SegmentSumArgs {
  inputs: { x?: TensorInfo; segmentIds?: TensorInfo };
  backend: WasmBackendLike;
  attrs: { numSegments?: number };
}

export function unsortedSegmentSum(args: SegmentSumArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  const ids = inputs.segmentIds!;
  const numSegments = attrs.numSegments!;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`unsortedSegmentSum on wasm supports float32 and int32 data, got ${x.dtype}`);
  }
  if (ids.dtype !== 'int32')
    throw new Error(`unsortedSegmentSum: segmentIds must be int32, got ${ids.dtype}`);
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`unsortedSegmentSum: numSegments must be a non-negative integer, got ${numSegments}`);
  }
  if (ids.shape.length !== 1 || x.shape.length < 1 || ids.shape[0] !== x.shape[0]) {
    throw new Error(
      `unsortedSegmentSum: segmentIds must be 1-D with one id per row of x (x.shape[0]); got ` +
        `segmentIds of shape [${ids.shape}] for x of shape [${x.shape}]`,
    );
  }
  const outShape = [numSegments, ...x.shape.slice(1)];
  const out = backend.makeOutput(outShape, x.dtype);
  const outSize = util.sizeFromShape(outShape);
  const rows = x.shape[0]!;
  const tail = util.sizeFromShape(x.shape.slice(1));

  const outPtr = offsetOf(backend, out.dataId as DataId);
  const xPtr = offsetOf(backend, x.dataId as DataId);
  const idsPtr = offsetOf(backend, ids.dataId as DataId);
  const state = kernelState(backend);
  if (state) {
    // makeOutput's memory is not zeroed: clear it, then add each row of x into its segment's row.
    state.k.zero(outPtr, 4 * outSize);
    if (rows > 0 && tail > 0) {
      const scatter = x.dtype === 'float32' ? state.k.scatter_add_f32 : state.k.scatter_add_i32;
      scatter(outPtr, xPtr, idsPtr, rows, tail, numSegments);
    }
    return out;
  }
  // Portable path (no wasm SIMD): the same loops over the heap views.
  const heap = x.dtype === 'float32' ? backend.wasm.HEAPF32 : backend.wasm.HEAP32;
  const o = outPtr >>> 2;
  const xs = xPtr >>> 2;
  const is = idsPtr >>> 2;
  heap.fill(0, o, o + outSize);
  const heapIds = backend.wasm.HEAP32;
  for (let row = 0; row < rows; row++) {
    const s = heapIds[is + row]!;
    if (s < 0 || s >= numSegments) continue;
    const dst = o + s * tail;
    const src = xs + row * tail;
    for (let t = 0; t < tail; t++) heap[dst + t]! += heap[src + t]!;
  }
  return out;
}
