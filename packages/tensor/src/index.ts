/**
 * @relign/tensor — the ground relign stands on: backend selection, wasm kernels that make tfjs's
 * WebAssembly backend fit for training, RLHF numerics, input checks with clear errors (shared by every
 * relign package), a seeded splittable RNG, AdamW, and safetensors I/O.
 */
export * from './backend.js';
export * from './auto-backend.js';
export {
  describeAdapter,
  findWebGPUAdapter,
  formatAdapter,
  type AdapterInfoLike,
  type GpuAdapterReport,
} from './webgpu.js';
export { registerWasmKernels } from './wasm/index.js';
export { fusedGelu, fusedLayerNorm } from './wasm/fused-ops.js';
export { fusedRmsNorm, fusedSwiglu } from './wasm/fused-norm-ops.js';
export { setWasmRelaxedSimd, wasmRelaxedSimd } from './wasm/relaxed-simd.js';
export {
  fusedMaskedSoftmax,
  fusedPrefixAttention,
  inPlaceWritesAvailable,
  writeRowsInPlace,
} from './wasm/attention-ops.js';
export { fusedGpt2DecodeBlock, type Gpt2BlockWeights } from './wasm/decode-block-op.js';
export { drawFromLogits } from './wasm/host-sampler.js';
export {
  getWasmThreads,
  setWasmThreads,
  wasmThreadsInfo,
  wasmThreadsReady,
  type WasmThreadsInfo,
} from './wasm/threads.js';
export * from './numerics/index.js';
export * from './validate.js';
export * from './rng.js';
export * from './optim/adamw.js';
export * from './optim/schedule.js';
export * from './io/safetensors.js';
export * from './io/safetensors-dir.js';
export { bfloat16ToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from './io/safetensors-half.js';
export * from './io/atomic.js';
export * from './io/checkpoint-dir.js';
// File access through `#platform` (Node.js fs, or a stand-in that rejects in a browser bundle).
export * from './platform/index.js';
