/**
 * The order of a GPT-2 block's steps in a decode step, shared by the one-thread kernel
 * (`decode-block-op.ts`, on the backend's memory) and the threaded one (`decode-block-threads.ts`, on the
 * threads' shared memory): they differ only in where the operands live and how a product runs.
 */
import type { KernelExports } from './kernel-module.js';

/** Byte offsets of a block's activations in one memory: x, y, LayerNorm out, q|k|v, attention out, a temporary [B, D], the MLP's [B, F]. */
export interface BlockLayout {
  x: number;
  y: number;
  ln: number;
  qkv: number;
  att: number;
  tmp: number;
  fc: number;
}

/** The block's weights by name (see `Gpt2BlockWeights`). */
export type BlockWeightName =
  | 'ln1g'
  | 'ln1b'
  | 'attnW'
  | 'attnB'
  | 'projW'
  | 'projB'
  | 'ln2g'
  | 'ln2b'
  | 'fcW'
  | 'fcB'
  | 'mlpProjW'
  | 'mlpProjB';

/** How the steps run on one memory. */
export interface BlockSteps {
  /** The kernels on that memory (LayerNorm and the residual additions run as they are). */
  k: KernelExports;
  /** A weight's byte offset in that memory. */
  w(name: BlockWeightName): number;
  /** C [m, n] = A [m, kk] W + bias, the bias written into C first (as `_FusedMatMul` does). */
  linear(
    c: number,
    a: number,
    w: BlockWeightName,
    bias: BlockWeightName,
    m: number,
    kk: number,
    n: number,
  ): void;
  /** GELU of `n` floats in place. */
  gelu(p: number, n: number): void;
  /** This step's k and v (in qkv) into the cache, then attention over it into att. */
  attend(): void;
}

/**
 * y = x + proj(attention(LN1(x))), then y += proj(gelu(LN2(y) Wfc + b)): the block, step by step.
 */
export function runGpt2Block(
  s: BlockSteps,
  o: BlockLayout,
  B: number,
  D: number,
  F: number,
  eps: number,
): void {
  s.k.layer_norm(o.ln, o.x, s.w('ln1g'), s.w('ln1b'), B, D, eps);
  s.linear(o.qkv, o.ln, 'attnW', 'attnB', B, D, 3 * D);
  s.attend();
  s.linear(o.tmp, o.att, 'projW', 'projB', B, D, D);
  s.k.add_f32(o.y, o.x, o.tmp, B * D);
  s.k.layer_norm(o.ln, o.y, s.w('ln2g'), s.w('ln2b'), B, D, eps);
  s.linear(o.fc, o.ln, 'fcW', 'fcB', B, D, F);
  s.gelu(o.fc, B * F);
  s.linear(o.tmp, o.fc, 'mlpProjW', 'mlpProjB', B, F, D);
  s.k.add_f32(o.y, o.y, o.tmp, B * D);
}
