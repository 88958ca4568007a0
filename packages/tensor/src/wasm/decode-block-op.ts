/**
 * A whole GPT-2 block for one decode step (one new token per row, keys/values in a preallocated cache) as
 * ONE wasm kernel: LayerNorm, the fused q/k/v projection, the in-place cache write, attention over the
 * cached prefix, the output projection and residual, LayerNorm, the GELU MLP and residual.
 *
 * Why: a decode step multiplies 1-16 rows by each weight matrix, so each of the block's ~14 tfjs kernels
 * costs more in dispatch (engine bookkeeping, tensor allocation, ~5-10 µs) than the arithmetic it starts
 * (issue 19; measured on tiny-l4: the GEMMs were 43 % of decoding, everything else dispatch and small
 * kernels). Here the same module functions run back to back on scratch memory with no engine in between.
 *
 * Same bits as the unfused ops: every step is the kernel the unfused op runs (layer_norm, the GEMM driver
 * with the bias written into C first, prefix_attention, gelu), and the residual additions are exact IEEE
 * additions (`add_f32`), so a decode step gives identical logits with or without this kernel (tested).
 *
 * wasm only, no gradient (decoding); {@link fusedGpt2DecodeBlock} returns null elsewhere and the caller
 * runs the ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { geluAt } from './fused-ops.js';
import { gemm } from './gemm.js';
import { runGpt2Block, type BlockSteps, type BlockWeightName } from './decode-block-steps.js';
import { threadedGpt2Block } from './decode-block-threads.js';
import { kernelState, offsetOf, type KernelState, type WasmBackendLike } from './state.js';

export const GPT2_DECODE_BLOCK_KERNEL = 'RelignGpt2DecodeBlock';

/** One GPT-2 block's parameters, in the Hugging Face layout (Conv1D weights stored [in, out]). */
export interface Gpt2BlockWeights {
  /** ln_1.weight / ln_1.bias [D]. */
  ln1g: tf.Tensor1D;
  ln1b: tf.Tensor1D;
  /** attn.c_attn.weight [D, 3D] / bias [3D]: q | k | v. */
  attnW: tf.Tensor2D;
  attnB: tf.Tensor1D;
  /** attn.c_proj.weight [D, D] / bias [D]. */
  projW: tf.Tensor2D;
  projB: tf.Tensor1D;
  /** ln_2.weight / ln_2.bias [D]. */
  ln2g: tf.Tensor1D;
  ln2b: tf.Tensor1D;
  /** mlp.c_fc.weight [D, F] / bias [F]. */
  fcW: tf.Tensor2D;
  fcB: tf.Tensor1D;
  /** mlp.c_proj.weight [F, D] / bias [D]. */
  mlpProjW: tf.Tensor2D;
  mlpProjB: tf.Tensor1D;
}

const WEIGHT_NAMES: readonly BlockWeightName[] = gpt2BlockShapes(0, 0).map(([name]) => name);

/** Each weight of a GPT-2 block of width D and MLP width F with its shape, in the HF layout. */
export function gpt2BlockShapes(D: number, F: number): [BlockWeightName, number[]][] {
  return [
    ['ln1g', [D]],
    ['ln1b', [D]],
    ['attnW', [D, 3 * D]],
    ['attnB', [3 * D]],
    ['projW', [D, D]],
    ['projB', [D]],
    ['ln2g', [D]],
    ['ln2b', [D]],
    ['fcW', [D, F]],
    ['fcB', [F]],
    ['mlpProjW', [F, D]],
    ['mlpProjB', [D]],
  ];
}

interface Attrs {
  position: number;
  eps: number;
  scale: number;
}

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: WasmBackendLike;
  attrs: Attrs;
}

/** C [m, n] = A [m, k] @ W [k, n] + bias [n], as `_FusedMatMul` computes it (bias into C, then accumulate). */
function linearAt(
  backend: WasmBackendLike,
  state: KernelState,
  c: number,
  a: number,
  w: number,
  bias: number,
  m: number,
  k: number,
  n: number,
): void {
  state.k.copy2d(c, 4 * n, bias, 0, m, 4 * n);
  gemm(backend, state, m, n, k, { ptr: a, rs: 4 * k, cs: 4 }, { ptr: w, rs: 4 * n, cs: 4 }, c, 4 * n, true);
}

/**
 * The wasm `RelignGpt2DecodeBlock` kernel: x [B, D], the block's weights, keys/values [B, H, cap, dh]
 * (written IN PLACE at `position`), optional bias [B or 1, 1, 1, position + 1]. @returns [B, D].
 */
export function gpt2DecodeBlockKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const state = kernelState(backend);
  if (!state)
    throw new Error(`${GPT2_DECODE_BLOCK_KERNEL}: relign wasm kernels are unavailable on this backend`);
  const { x, keys, values, bias } = inputs as Record<string, TensorInfo>;
  const [B, D] = x!.shape as [number, number];
  const [, H, cap, dh] = keys!.shape as [number, number, number, number];
  const F = inputs['fcW']!.shape[1]!;
  const { position, eps, scale } = attrs;
  const len = position + 1;
  const out = backend.makeOutput([B, D], 'float32');
  // Scratch, one allocation: ln [B, D], qkv [B, 3D], q [B, D], att [B, D], tmp [B, D], fc [B, F], scores.
  const scratch = backend.makeOutput([B * (7 * D + F) + len], 'float32');
  // Offsets are read after the allocations (which may grow the heap; offsets stay valid).
  const p = (t: TensorInfo) => offsetOf(backend, t.dataId as DataId);
  const w = (name: BlockWeightName) => p(inputs[name]!);
  const ln = p(scratch);
  const qkv = ln + 4 * B * D;
  const q = qkv + 12 * B * D;
  const att = q + 4 * B * D;
  const tmp = att + 4 * B * D;
  const fc = tmp + 4 * B * D;
  const scores = fc + 4 * B * F;
  const [xp, yp, kp, vp] = [p(x!), p(out), p(keys!), p(values!)];
  const k = state.k;

  /** This step's k and v (in qkv) into the cache at `position`, then attention over the cache into att. */
  const attend = () => {
    const headBytes = 4 * dh;
    for (let b = 0; b < B; b++) {
      const at = 4 * (b * H * cap + position) * dh;
      const row = qkv + 12 * b * D;
      k.copy2d(kp + at, cap * headBytes, row + 4 * D, headBytes, H, headBytes);
      k.copy2d(vp + at, cap * headBytes, row + 8 * D, headBytes, H, headBytes);
    }
    k.copy2d(q, 4 * D, qkv, 12 * D, B, 4 * D);
    const hasBias = bias === undefined ? 0 : 1;
    const biasBs = bias === undefined || bias.shape[0] === 1 ? 0 : 4 * len;
    const biasPtr = hasBias ? p(bias!) : 0;
    k.prefix_attention(att, q, kp, vp, biasPtr, scores, B, H, 1, len, cap, dh, scale, biasBs, 0, hasBias);
  };

  const threaded = threadedGpt2Block(backend, Object.fromEntries(WEIGHT_NAMES.map((n) => [n, inputs[n]!])), {
    B,
    D,
    F,
    eps,
    x: xp,
    y: yp,
    qkv,
    att,
    attend,
  });
  if (!threaded) {
    const steps: BlockSteps = {
      k,
      w,
      linear: (c, a, wName, bName, m, kk, n) => linearAt(backend, state, c, a, w(wName), w(bName), m, kk, n),
      gelu: (at, n) => geluAt(k, () => backend.wasm.HEAPF32, state.tile, at, at, n),
      attend,
    };
    runGpt2Block(steps, { x: xp, y: yp, ln, qkv, att, tmp, fc }, B, D, F, eps);
  }
  backend.disposeData(scratch.dataId as DataId);
  return out;
}

/**
 * One GPT-2 block for a decode step (one query per row) whose keys/values go into a preallocated cache:
 * returns the block's output [B, D] and writes this step's keys and values IN PLACE at `position` of
 * `keys`/`values` (as {@link writeRowsInPlace}, with the same contract: only for a buffer one owner keeps
 * to itself, whose position `position` no reader has seen, such as @relign/lm's KV store).
 *
 * Returns null where the fused kernel cannot run: not the wasm backend with relign's kernels, a gradient
 * tape recording, or a tensor not float32. The caller then runs the block op by op (nothing was written).
 *
 * @param x [B, D] the residual stream; @param w the block's weights; @param keys [B, H, cap, D / H];
 * @param values like keys; @param position the step's position in the cache (cached length before it),
 *   `position < cap`; @param bias [B or 1, 1, 1, position + 1] additive attention bias (key padding), or
 *   undefined when every key is allowed; @param eps LayerNorm epsilon; @param scale attention scale.
 */
export function fusedGpt2DecodeBlock(
  x: tf.Tensor2D,
  w: Gpt2BlockWeights,
  keys: tf.Tensor4D,
  values: tf.Tensor4D,
  position: number,
  bias: tf.Tensor4D | undefined,
  eps: number,
  scale: number,
): tf.Tensor2D | null {
  const [B, D] = x.shape;
  const [kb, H, cap, dh] = keys.shape;
  const F = w.fcW.shape[1];
  const shapes: [string, number[], number[]][] = [
    ['keys', keys.shape, [B, H, cap, dh]],
    ['values', values.shape, [B, H, cap, dh]],
    ...gpt2BlockShapes(D, F).map(([n, want]): [string, number[], number[]] => [n, w[n].shape, want]),
  ];
  const bad = shapes.find(([, got, want]) => !tf.util.arraysEqual(got, want));
  if (kb !== B || H * dh !== D || bad) {
    const what = bad ? `${bad[0]} is ${JSON.stringify(bad[1])}, expected ${JSON.stringify(bad[2])}` : '';
    throw new Error(
      `fusedGpt2DecodeBlock: x ${JSON.stringify(x.shape)} and keys ${JSON.stringify(keys.shape)} do not ` +
        `fit (keys [B, H, cap, D / H])${what ? `; ${what}` : ''}`,
    );
  }
  if (!Number.isInteger(position) || position < 0 || position >= cap) {
    throw new Error(`fusedGpt2DecodeBlock: position ${position} is not in [0, ${cap}) (the cache capacity)`);
  }
  const len = position + 1;
  if (
    bias !== undefined &&
    ((bias.shape[0] !== 1 && bias.shape[0] !== B) ||
      bias.shape[1] !== 1 ||
      bias.shape[2] !== 1 ||
      bias.shape[3] !== len)
  ) {
    throw new Error(
      `fusedGpt2DecodeBlock: bias ${JSON.stringify(bias.shape)} must be [${B} or 1, 1, 1, ${len}]`,
    );
  }
  const tensors: tf.Tensor[] = [x, keys, values, ...WEIGHT_NAMES.map((n) => w[n])];
  if (bias !== undefined) tensors.push(bias);
  if (tensors.some((t) => t.dtype !== 'float32')) return null;
  if (tf.engine().state.gradientDepth > 0 || tf.getBackend() !== 'wasm') return null;
  if (!tf.getKernel(GPT2_DECODE_BLOCK_KERNEL, 'wasm')) return null;
  if (kernelState(tf.backend() as unknown as WasmBackendLike) === null) return null;
  const inputs: tf.NamedTensorMap = { x, keys, values };
  for (const n of WEIGHT_NAMES) inputs[n] = w[n];
  if (bias !== undefined) inputs['bias'] = bias;
  const attrs = { position, eps, scale };
  return tf
    .engine()
    .runKernel(GPT2_DECODE_BLOCK_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}
