/**
 * The seam through which adapters (LoRA, see `../lora/`) change a model's linear projections without copying
 * or replacing its weights. Every architecture (GPT-2, Llama, Qwen2, Qwen3) computes each linear module as
 * `y = linear(x, W, b)` and then, when a hook is attached to the model, adds `hook.delta(name, x, ctx)`.
 *
 * Module names are the Hugging Face module paths without the `.weight` suffix, e.g. `h.0.attn.c_attn`
 * (GPT-2, fused q/k/v) or `model.layers.0.self_attn.q_proj` (Llama/Qwen), which is also what PEFT's
 * `target_modules` and adapter key names use.
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface ProjectionContext {
  /** True when the forward pass runs under a gradient tape (training): adapters apply dropout only then. */
  readonly training: boolean;
}

export interface ProjectionHook {
  /**
   * The extra output of module `name` for its 2-D input `x` [N, in], shaped [N, out], or null to leave the
   * module unchanged. Called inside the model's `tf.tidy`; the model disposes what it returns.
   */
  delta(name: string, x: tf.Tensor2D, ctx: ProjectionContext): tf.Tensor2D | null;
  /**
   * The hook's own trainable variables (an adapter's weights). The model's `trainableVariables()` includes
   * them, so every optimizer that trains `policy.trainableVariables()` trains an adapter too.
   */
  trainableVariables?(): Map<string, tf.Variable>;
}
