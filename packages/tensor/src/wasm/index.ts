/**
 * relign's kernels for tfjs's `wasm` backend, which make it fit for training and fast at decoding:
 *
 * - `UnsortedSegmentSum` (absent on wasm): the gradient of `tf.gather`, i.e. of embedding lookups.
 * - `BatchMatMul`: every transpose/batch/broadcast combination on one SIMD GEMM (the stock kernel is
 *   fast only for an untransposed, unbatched product and 10-45x slower otherwise).
 * - `_FusedMatMul`: the same GEMM, then the bias and activation.
 * - `GatherV2`: one memory copy per gathered row (the stock kernel is ~50x slower on embeddings).
 * - `Sum` over a contiguous block of leading/middle axes (bias and layer-norm gradients): SIMD row
 *   additions instead of the stock transpose-then-sum.
 * - `Concat`, `Slice`, `SplitV`: memory.copy runs on the heap (the stock Concat copies row by row
 *   from JS, a KV-cache append per decoded token; the stock Slice first copies its whole input into JS).
 * - `RelignGelu`, `RelignLayerNorm`, `RelignTokenLogprob` (relign's own, behind `fusedGelu`,
 *   `fusedLayerNorm` and `logprobsFromLogits`'s forward): one kernel for a chain of 6-15 dispatches.
 * - `RelignRmsNorm`, `RelignSwiglu` (behind `fusedRmsNorm`, `fusedSwiglu`) and the backward kernels
 *   `RelignRmsNormGrad`, `RelignSwigluGrad`, `RelignLayerNormGrad`, `RelignGeluGrad`: one kernel each way.
 * - `RelignAdamW` (relign's own, behind `AdamW`'s steps): the update of every parameter in one call.
 * - `RelignMaskedSoftmax` (+ its gradient) and `RelignPrefixAttention` (relign's own, behind
 *   `fusedMaskedSoftmax` and `fusedPrefixAttention`): attention's softmax in one kernel each way, and a
 *   decode step's whole attention reading a preallocated KV cache in place.
 * - `RelignGpt2DecodeBlock` (relign's own, behind `fusedGpt2DecodeBlock`): a whole GPT-2 block of a decode
 *   step in one kernel (no dispatch between its ~14 steps).
 * - `Identity` (and `Transpose` by a permutation that keeps the memory order): share the input's data
 *   instead of copying it. tfjs clones every tensor saved for a backward pass with Identity, so the
 *   stock copy costs every training step a copy of all saved activations and weights.
 *
 * The GEMM is a small wasm SIMD module assembled at run time that shares the backend's memory; where
 * it cannot run (no wasm SIMD), the stock kernels are used.
 */
import {
  getKernel,
  registerKernel,
  unregisterKernel,
  type KernelConfig,
  type KernelFunc,
} from '@tensorflow/tfjs-core';
import { batchMatMul, setStockBatchMatMul } from './batch-mat-mul.js';
import { concat, setStockConcat } from './concat.js';
import { fusedMatMul, setStockFusedMatMul } from './fused-mat-mul.js';
import { gatherV2, setStockGatherV2 } from './gather-v2.js';
import { identity, setStockIdentity, setStockTranspose, transpose } from './identity.js';
import { setStockSlice, setStockSplitV, slice, splitV } from './slice.js';
import { setStockSum, sum } from './sum.js';
import { unsortedSegmentSum } from './unsorted-segment-sum.js';
import {
  GELU_KERNEL,
  geluKernel,
  LAYER_NORM_KERNEL,
  layerNormKernel,
  TOKEN_LOGPROB_KERNEL,
  tokenLogprobKernel,
} from './fused-ops.js';
import { ADAMW_KERNEL, adamwKernel } from './adamw-op.js';
import {
  MASKED_SOFTMAX_GRAD_KERNEL,
  MASKED_SOFTMAX_KERNEL,
  maskedSoftmaxGradKernel,
  maskedSoftmaxKernel,
  PREFIX_ATTENTION_KERNEL,
  prefixAttentionKernel,
} from './attention-ops.js';
import {
  GELU_GRAD_KERNEL,
  geluGradKernel,
  LAYER_NORM_GRAD_KERNEL,
  layerNormGradKernel,
  RMS_NORM_GRAD_KERNEL,
  RMS_NORM_KERNEL,
  rmsNormGradKernel,
  rmsNormKernel,
  SWIGLU_GRAD_KERNEL,
  SWIGLU_KERNEL,
  swigluGradKernel,
  swigluKernel,
} from './fused-norm-ops.js';
import { GPT2_DECODE_BLOCK_KERNEL, gpt2DecodeBlockKernel } from './decode-block-op.js';
import { relaxedSimdEnv } from './relaxed-simd.js';

const BACKEND = 'wasm';

const ours = {
  BatchMatMul: batchMatMul as unknown as KernelFunc,
  _FusedMatMul: fusedMatMul as unknown as KernelFunc,
  Concat: concat as unknown as KernelFunc,
  GatherV2: gatherV2 as unknown as KernelFunc,
  Identity: identity as unknown as KernelFunc,
  Transpose: transpose as unknown as KernelFunc,
  Slice: slice as unknown as KernelFunc,
  SplitV: splitV as unknown as KernelFunc,
  Sum: sum as unknown as KernelFunc,
  UnsortedSegmentSum: unsortedSegmentSum as unknown as KernelFunc,
  [GELU_KERNEL]: geluKernel as unknown as KernelFunc,
  [LAYER_NORM_KERNEL]: layerNormKernel as unknown as KernelFunc,
  [TOKEN_LOGPROB_KERNEL]: tokenLogprobKernel as unknown as KernelFunc,
  [ADAMW_KERNEL]: adamwKernel as unknown as KernelFunc,
  [MASKED_SOFTMAX_KERNEL]: maskedSoftmaxKernel as unknown as KernelFunc,
  [MASKED_SOFTMAX_GRAD_KERNEL]: maskedSoftmaxGradKernel as unknown as KernelFunc,
  [PREFIX_ATTENTION_KERNEL]: prefixAttentionKernel as unknown as KernelFunc,
  [RMS_NORM_KERNEL]: rmsNormKernel as unknown as KernelFunc,
  [RMS_NORM_GRAD_KERNEL]: rmsNormGradKernel as unknown as KernelFunc,
  [SWIGLU_KERNEL]: swigluKernel as unknown as KernelFunc,
  [SWIGLU_GRAD_KERNEL]: swigluGradKernel as unknown as KernelFunc,
  [LAYER_NORM_GRAD_KERNEL]: layerNormGradKernel as unknown as KernelFunc,
  [GELU_GRAD_KERNEL]: geluGradKernel as unknown as KernelFunc,
  [GPT2_DECODE_BLOCK_KERNEL]: gpt2DecodeBlockKernel as unknown as KernelFunc,
};

/** The stock configs we replaced, to restore them. */
const replaced = new Map<string, KernelConfig>();

function replaceKernel(name: keyof typeof ours, setStock?: (fn: KernelFunc | undefined) => void): void {
  const current = getKernel(name, BACKEND) as KernelConfig | undefined;
  if (current?.kernelFunc === ours[name]) return;
  if (current) {
    if (!setStock) return; // a kernel we only add (UnsortedSegmentSum) that tfjs now has: keep it
    replaced.set(name, current);
    setStock(current.kernelFunc);
    unregisterKernel(name, BACKEND);
  }
  registerKernel({
    kernelName: name,
    backendName: BACKEND,
    kernelFunc: ours[name],
    // Keep the stock setup/dispose hooks, so a re-created wasm backend still initializes the stock
    // kernel that ours falls back to.
    ...(current?.setupFunc ? { setupFunc: current.setupFunc } : {}),
    ...(current?.disposeFunc ? { disposeFunc: current.disposeFunc } : {}),
  });
}

/**
 * Registers relign's wasm kernels. Idempotent; a no-op until `@tensorflow/tfjs-backend-wasm` has been
 * loaded (its kernels registered). Called by `initBackend` whenever wasm becomes the active backend.
 */
export function registerWasmKernels(): void {
  if (!getKernel('BatchMatMul', BACKEND)) return; // the wasm backend package is not loaded
  // A bad RELIGN_WASM_RELAXED is an error here: where the kernels are assembled it would only disable them.
  relaxedSimdEnv();
  replaceKernel('BatchMatMul', setStockBatchMatMul);
  replaceKernel('_FusedMatMul', setStockFusedMatMul);
  replaceKernel('Concat', setStockConcat);
  replaceKernel('Slice', setStockSlice);
  replaceKernel('SplitV', setStockSplitV);
  replaceKernel('GatherV2', setStockGatherV2);
  replaceKernel('Identity', setStockIdentity);
  replaceKernel('Transpose', setStockTranspose);
  replaceKernel('Sum', setStockSum);
  replaceKernel('UnsortedSegmentSum');
  replaceKernel(GELU_KERNEL);
  replaceKernel(LAYER_NORM_KERNEL);
  replaceKernel(TOKEN_LOGPROB_KERNEL);
  replaceKernel(ADAMW_KERNEL);
  replaceKernel(MASKED_SOFTMAX_KERNEL);
  replaceKernel(MASKED_SOFTMAX_GRAD_KERNEL);
  replaceKernel(PREFIX_ATTENTION_KERNEL);
  replaceKernel(RMS_NORM_KERNEL);
  replaceKernel(RMS_NORM_GRAD_KERNEL);
  replaceKernel(SWIGLU_KERNEL);
  replaceKernel(SWIGLU_GRAD_KERNEL);
  replaceKernel(LAYER_NORM_GRAD_KERNEL);
  replaceKernel(GELU_GRAD_KERNEL);
  replaceKernel(GPT2_DECODE_BLOCK_KERNEL);
}

/** Puts the stock wasm kernels back (benchmarks and tests compare against them). */
export function restoreStockWasmKernels(): void {
  for (const name of Object.keys(ours) as (keyof typeof ours)[]) {
    const current = getKernel(name, BACKEND) as KernelConfig | undefined;
    if (current?.kernelFunc !== ours[name]) continue;
    unregisterKernel(name, BACKEND);
    const stock = replaced.get(name);
    if (stock) registerKernel(stock);
    replaced.delete(name);
  }
}
