/**
 * The Llama-family decoder, shared by `llama` (Llama 2/3.x, SmolLM2, TinyLlama), `qwen2` and `qwen3`:
 * token embedding, pre-RMSNorm blocks with rotary embeddings (HF rotate-half), grouped-query attention and a
 * SwiGLU MLP, final RMSNorm, LM head tied to the embedding or separate (`lm_head.weight`). Projections are
 * torch nn.Linear, stored [out, in] as in HF checkpoints. Family differences come from `llamaLayout`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedSwiglu } from '@relign/tensor';
import { attend, mergeHeads, splitHeads } from './attention.js';
import type { Architecture, Backbone, StepContext } from './backbone.js';
import { extendKV } from './kv-cache.js';
import { llamaLayout, type LlamaConfig } from './llama-config.js';
import { linearT, withDelta } from './layers.js';
import type { ParamInit, ParamSpec } from './params.js';
import { rmsNorm } from './rmsnorm.js';
import { applyRotary, inverseFrequencies, rotaryTables } from './rope.js';

/**
 * Parameters in HF order: embed_tokens, per layer (input_layernorm, q/k/v[/biases], q_norm/k_norm, o_proj,
 * post_attention_layernorm, gate/up/down), norm, then lm_head when untied. Init as HF
 * `LlamaPreTrainedModel._init_weights`: normal(0, initializer_range) for embeddings and projections, norms 1,
 * biases 0.
 */
export function llamaParameterSpecs(c: LlamaConfig): ParamSpec[] {
  const { qkvBias, oBias, qkNorm } = llamaLayout(c);
  const D = c.hidden_size;
  const F = c.intermediate_size;
  const Q = c.num_attention_heads * c.head_dim;
  const KV = c.num_key_value_heads * c.head_dim;
  const normal: ParamInit = { kind: 'normal', std: c.initializer_range };
  const ones: ParamInit = { kind: 'ones' };
  const zeros: ParamInit = { kind: 'zeros' };
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocab_size, D], init: normal }];
  const lin = (name: string, out: number, inp: number, bias: boolean) => {
    specs.push({ name: `${name}.weight`, shape: [out, inp], init: normal });
    if (bias) specs.push({ name: `${name}.bias`, shape: [out], init: zeros });
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    specs.push({ name: `${p}input_layernorm.weight`, shape: [D], init: ones });
    lin(`${p}self_attn.q_proj`, Q, D, qkvBias);
    lin(`${p}self_attn.k_proj`, KV, D, qkvBias);
    lin(`${p}self_attn.v_proj`, KV, D, qkvBias);
    if (qkNorm) {
      specs.push({ name: `${p}self_attn.q_norm.weight`, shape: [c.head_dim], init: ones });
      specs.push({ name: `${p}self_attn.k_norm.weight`, shape: [c.head_dim], init: ones });
    }
    lin(`${p}self_attn.o_proj`, D, Q, oBias);
    specs.push({ name: `${p}post_attention_layernorm.weight`, shape: [D], init: ones });
    lin(`${p}mlp.gate_proj`, F, D, c.mlp_bias);
    lin(`${p}mlp.up_proj`, F, D, c.mlp_bias);
    lin(`${p}mlp.down_proj`, D, F, c.mlp_bias);
  }
  specs.push({ name: 'model.norm.weight', shape: [D], init: ones });
  if (!c.tie_word_embeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocab_size, D], init: normal });
  return specs;
}

export const llamaArchitecture: Architecture<LlamaConfig> = {
  scope: 'relign_llama',
  parameterSpecs: llamaParameterSpecs,
  backbone: (config, vars) => new LlamaBackbone(config, vars),
};

class LlamaBackbone implements Backbone {
  private readonly vars: ReadonlyMap<string, tf.Variable>;
  private readonly invFreq: Float32Array;

  constructor(
    private readonly config: LlamaConfig,
    vars: ReadonlyMap<string, tf.Variable>,
  ) {
    this.vars = vars;
    this.invFreq = inverseFrequencies(config);
  }

  private w<T extends tf.Tensor>(name: string): T {
    return this.vars.get(name) as unknown as T;
  }

  /** nn.Linear module `name` (HF path without `.weight`) plus the adapter hook's delta. */
  private proj(ctx: StepContext, name: string, x: tf.Tensor2D): tf.Tensor2D {
    const y = linearT(x, this.w(`${name}.weight`), this.vars.get(`${name}.bias`) as tf.Tensor1D | undefined);
    return withDelta(y, ctx.hook, name, x, ctx.training);
  }

  hidden(ctx: StepContext): tf.Tensor2D {
    const { B, T, tPast } = ctx;
    const c = this.config;
    const { qkNorm } = llamaLayout(c);
    const H = c.num_attention_heads;
    const Hkv = c.num_key_value_heads;
    const G = H / Hkv;
    const Dh = c.head_dim;
    const N = B * T;
    const eps = c.rms_norm_eps;
    const scale = 1 / Math.sqrt(Dh);

    let x = tf.gather(
      this.w<tf.Tensor2D>('model.embed_tokens.weight'),
      tf.reshape(ctx.ids, [N]),
    ) as tf.Tensor2D;
    // Rotation tables once per forward, shared by every layer (dense: one row, broadcast over the batch).
    const positions =
      ctx.positions ?? (tf.reshape(tf.range(tPast, tPast + T, 1, 'float32'), [1, T]) as tf.Tensor2D);
    const { cos, sin } = rotaryTables(positions, tf.tensor1d(this.invFreq));
    // GQA: the G query heads sharing a kv head are stacked as G*T query rows (a free reshape), so K/V are never
    // repeated; the bias is tiled to match (row g*T + t is query t).
    const bias = ctx.bias !== undefined && G > 1 ? tf.tile(ctx.bias, [1, 1, G, 1]) : ctx.bias;

    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      const h = rmsNorm(x, this.w(`${p}input_layernorm.weight`), eps);
      let q2 = this.proj(ctx, `${p}self_attn.q_proj`, h);
      let k2 = this.proj(ctx, `${p}self_attn.k_proj`, h);
      const v2 = this.proj(ctx, `${p}self_attn.v_proj`, h);
      if (qkNorm) {
        // Qwen3: RMSNorm over each head's Dh values, before the rotation.
        q2 = tf.reshape(rmsNorm(tf.reshape(q2, [N * H, Dh]), this.w(`${p}self_attn.q_norm.weight`), eps), [
          N,
          H * Dh,
        ]);
        k2 = tf.reshape(rmsNorm(tf.reshape(k2, [N * Hkv, Dh]), this.w(`${p}self_attn.k_norm.weight`), eps), [
          N,
          Hkv * Dh,
        ]);
      }
      const q = applyRotary(splitHeads(q2, B, T, H), cos, sin);
      const k = applyRotary(splitHeads(k2, B, T, Hkv), cos, sin);
      const v = splitHeads(v2, B, T, Hkv);
      const kv = extendKV(ctx, i, k, v);
      let att: tf.Tensor4D;
      if (G === 1) att = attend(q, kv.keys, kv.values, bias, scale, kv.length, kv.overCache);
      else {
        const qg = tf.reshape(q, [B, Hkv, G * T, Dh]) as tf.Tensor4D;
        const grouped = attend(qg, kv.keys, kv.values, bias, scale, kv.length, kv.overCache);
        att = tf.reshape(grouped, [B, H, T, Dh]);
      }
      const a = mergeHeads(att);
      x = tf.add(x, this.proj(ctx, `${p}self_attn.o_proj`, a));
      const h2 = rmsNorm(x, this.w(`${p}post_attention_layernorm.weight`), eps);
      const gate = this.proj(ctx, `${p}mlp.gate_proj`, h2);
      const up = this.proj(ctx, `${p}mlp.up_proj`, h2);
      // silu(gate) * up: one kernel each way on wasm (fusedSwiglu), three ops elsewhere.
      const m = fusedSwiglu(gate, up);
      x = tf.add(x, this.proj(ctx, `${p}mlp.down_proj`, m));
    }
    return rmsNorm(x, this.w('model.norm.weight'), eps);
  }

  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    const head = this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    return tf.matMul(hidden, this.w<tf.Tensor2D>(head), false, true);
  }
}
