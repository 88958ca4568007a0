/**
 * The GPT-2 architecture: learned positions, pre-LayerNorm blocks, causal multi-head attention with a fused
 * q/k/v projection, tanh-form GELU MLP, final LayerNorm, LM head tied to the token embedding. Weights use
 * the Hugging Face GPT-2 layout (Conv1D weights stored [in, out]), so real GPT-2-family checkpoints load as is.
 *
 * Not implemented: dropout (RLHF fine-tuning runs with dropout off, as TRL does for PPO; the config's
 * `*_pdrop` fields are ignored and saved as 0).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedGpt2DecodeBlock, type Gpt2BlockWeights } from '@relign/tensor';
import { attend, mergeHeads, splitHeads, splitQkvHeads } from './attention.js';
import type { Architecture, Backbone, StepContext } from './backbone.js';
import type { GPT2Config } from './config.js';
import { extendKV, inPlaceLayer } from './kv-cache.js';
import { gelu, layerNorm, linear, qkvProjection, withDelta } from './layers.js';
import { parameterSpecs } from './params.js';

/** One block's parameters (HF names: ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj). */
type Block = Gpt2BlockWeights;

/** Whether decode steps use the fused block kernel; tests switch it off to compare with the ops. */
export const fusedDecode = { enabled: true };

export const gpt2Architecture: Architecture<GPT2Config> = {
  scope: 'relign_gpt2',
  parameterSpecs,
  backbone: (config, vars) => new GPT2Backbone(config, vars),
};

class GPT2Backbone implements Backbone {
  private readonly blocks: Block[] = [];
  private readonly wte: tf.Tensor2D;
  private readonly wpe: tf.Tensor2D;
  private readonly lnfG: tf.Tensor1D;
  private readonly lnfB: tf.Tensor1D;

  constructor(
    private readonly config: GPT2Config,
    vars: ReadonlyMap<string, tf.Variable>,
  ) {
    const g = <T extends tf.Tensor>(n: string) => vars.get(n)! as unknown as T;
    this.wte = g('wte.weight');
    this.wpe = g('wpe.weight');
    this.lnfG = g('ln_f.weight');
    this.lnfB = g('ln_f.bias');
    for (let i = 0; i < config.n_layer; i++) {
      const b = <T extends tf.Tensor>(n: string) => g<T>(`h.${i}.${n}`);
      this.blocks.push({
        ln1g: b('ln_1.weight'),
        ln1b: b('ln_1.bias'),
        attnW: b('attn.c_attn.weight'),
        attnB: b('attn.c_attn.bias'),
        projW: b('attn.c_proj.weight'),
        projB: b('attn.c_proj.bias'),
        ln2g: b('ln_2.weight'),
        ln2b: b('ln_2.bias'),
        fcW: b('mlp.c_fc.weight'),
        fcB: b('mlp.c_fc.bias'),
        mlpProjW: b('mlp.c_proj.weight'),
        mlpProjB: b('mlp.c_proj.bias'),
      });
    }
  }

  hidden(ctx: StepContext): tf.Tensor2D {
    const { B, T, tPast, hook, training } = ctx;
    const cfg = this.config;
    const H = cfg.n_head;
    const D = cfg.n_embd;
    const scale = cfg.scale_attn_weights ? 1 / Math.sqrt(D / H) : 1;
    const eps = cfg.layer_norm_epsilon;

    const tokens = tf.gather(this.wte, tf.reshape(ctx.ids, [B * T])) as tf.Tensor2D;
    let x: tf.Tensor2D;
    if (ctx.positions === undefined) {
      // Every row sits at positions tPast..tPast+T-1: a slice of wpe, broadcast over the batch, instead of
      // a second gather.
      const pos = tf.slice(this.wpe, [tPast, 0], [T, D]);
      x = T === 1 ? tf.add(tokens, pos) : tf.reshape(tf.add(tf.reshape(tokens, [B, T, D]), pos), [B * T, D]);
    } else {
      const pos = tf.reshape(tf.cast(ctx.positions, 'int32'), [B * T]);
      x = tf.add(tokens, tf.gather(this.wpe, pos)) as tf.Tensor2D;
    }

    for (let i = 0; i < this.blocks.length; i++) {
      const blk = this.blocks[i]!;
      const p = `h.${i}.`;
      // A decode step into a preallocated cache, without adapters: the whole block as one wasm kernel
      // (same bits as the ops below; @relign/tensor's decode-block-op.ts says why).
      const store = T === 1 && hook === null && fusedDecode.enabled ? inPlaceLayer(ctx, i) : undefined;
      if (store !== undefined) {
        const y = fusedGpt2DecodeBlock(x, blk, store.keys, store.values, tPast, ctx.bias, eps, scale);
        if (y !== null) {
          x = y;
          continue;
        }
      }
      const h = layerNorm(x, blk.ln1g, blk.ln1b, eps);
      let q: tf.Tensor4D;
      let k: tf.Tensor4D;
      let v: tf.Tensor4D;
      if (T === 1 || hook !== null) {
        // The hook's delta is for the fused [N, 3D] output, so the fused schedule is used with a hook.
        const qkv = withDelta(linear(h, blk.attnW, blk.attnB), hook, `${p}attn.c_attn`, h, training);
        if (T === 1) [q, k, v] = splitQkvHeads(qkv, H);
        else {
          const [q2, k2, v2] = tf.split(qkv, 3, 1) as tf.Tensor2D[];
          q = splitHeads(q2!, B, T, H);
          k = splitHeads(k2!, B, T, H);
          v = splitHeads(v2!, B, T, H);
        }
      } else {
        const [q2, k2, v2] = qkvProjection(h, blk.attnW, blk.attnB);
        q = splitHeads(q2, B, T, H);
        k = splitHeads(k2, B, T, H);
        v = splitHeads(v2, B, T, H);
      }
      const kv = extendKV(ctx, i, k, v);
      const a = mergeHeads(attend(q, kv.keys, kv.values, ctx.bias, scale, kv.length, kv.overCache));
      const proj = linear(a, blk.projW, blk.projB);
      x = tf.add(x, withDelta(proj, hook, `${p}attn.c_proj`, a, training));
      const h2 = layerNorm(x, blk.ln2g, blk.ln2b, eps);
      const fc = linear(h2, blk.fcW, blk.fcB);
      const m = gelu(withDelta(fc, hook, `${p}mlp.c_fc`, h2, training));
      const mp = linear(m, blk.mlpProjW, blk.mlpProjB);
      x = tf.add(x, withDelta(mp, hook, `${p}mlp.c_proj`, m, training));
    }
    return layerNorm(x, this.lnfG, this.lnfB, eps);
  }

  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    // Tied head: logits = hidden @ wte^T.
    return tf.matMul(hidden, this.wte, false, true);
  }
}
