/**
 * What an architecture (gpt2.ts, llama.ts) provides to `CausalLM`: its parameters, and the per-forward
 * computation from token ids to final hidden states and logits. `CausalLM` owns everything shared by all of
 * them: argument checks, padding masks, position ids, the attention bias, the KV cache and the adapter hook.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { KVCache, KVPlan } from './kv-cache.js';
import type { ParamSpec } from './params.js';
import type { ProjectionHook } from './projection-hook.js';

/** One forward call, as prepared by `CausalLM` (all tensors live in its `tf.tidy`). */
export interface StepContext {
  B: number;
  T: number;
  /** Cached length (padding included). */
  tPast: number;
  /** [B, T] int32 token ids. */
  ids: tf.Tensor2D;
  /** [B, T] float32 position ids; undefined when every row sits at tPast..tPast+T-1 (no padding ever). */
  positions: tf.Tensor2D | undefined;
  /** [B or 1, 1, T, tPast + T] additive attention bias; undefined when every query may see every key. */
  bias: tf.Tensor4D | undefined;
  past: KVCache | undefined;
  /** Push each layer's full keys/values [B, Hkv, tPast + T, Dh] to `keys`/`values`. */
  wantCache: boolean;
  /** Preallocated KV storage for this forward (wasm), or undefined: concatenate (see kv-cache.ts `extendKV`). */
  kvPlan: KVPlan | undefined;
  keys: tf.Tensor4D[];
  values: tf.Tensor4D[];
  hook: ProjectionHook | null;
  /** Whether a gradient tape is recording (passed on to the hook). */
  training: boolean;
}

/** A built model body over the model's variables. Methods run inside the caller's `tf.tidy`. */
export interface Backbone {
  /** Token ids to final (normalized) hidden states [B*T, D]. */
  hidden(ctx: StepContext): tf.Tensor2D;
  /** Hidden states [N, D] to logits [N, V]. */
  logits(hidden: tf.Tensor2D): tf.Tensor2D;
}

/** An architecture: its parameters (HF names, order fixes the init draws) and how to build its body. */
export interface Architecture<C> {
  /** tfjs variable-name scope base, e.g. `relign_gpt2`. */
  scope: string;
  parameterSpecs(config: C): ParamSpec[];
  backbone(config: C, vars: ReadonlyMap<string, tf.Variable>): Backbone;
}
