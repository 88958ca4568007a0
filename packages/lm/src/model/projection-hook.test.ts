import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@relign/tensor/testing';
import { CausalLM } from './causal-lm.js';
import type { ModelConfigInput } from './model-config.js';
import type { ProjectionHook } from './projection-hook.js';
import { randomizeWeights } from './test-helpers.js';

const GPT2: ModelConfigInput = { vocab_size: 11, n_positions: 8, n_embd: 8, n_layer: 2, n_head: 2 };
const QWEN: ModelConfigInput = {
  model_type: 'qwen3',
  vocab_size: 11,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 4,
};

/** Records every call; adds `scale * x @ A` for the module `only` (A all ones). */
function recorder(only: string, scale: number): ProjectionHook & { calls: [string, number[], boolean][] } {
  const calls: [string, number[], boolean][] = [];
  return {
    calls,
    delta(name, x, ctx) {
      calls.push([name, x.shape, ctx.training]);
      if (name !== only) return null;
      return tf.mul(tf.sum(x, 1, true), scale) as tf.Tensor2D; // [N, 1], broadcast over the outputs
    },
  };
}

describe('projection hook seam', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it.each([
    [
      'gpt2',
      GPT2,
      ['h.0.attn.c_attn', 'h.0.attn.c_proj', 'h.0.mlp.c_fc', 'h.0.mlp.c_proj', 'h.1.attn.c_attn'],
      'h.1.mlp.c_fc',
    ],
    [
      'qwen3',
      QWEN,
      [
        'model.layers.0.self_attn.q_proj',
        'model.layers.0.self_attn.k_proj',
        'model.layers.0.self_attn.v_proj',
        'model.layers.0.self_attn.o_proj',
        'model.layers.0.mlp.gate_proj',
        'model.layers.0.mlp.up_proj',
        'model.layers.0.mlp.down_proj',
      ],
      'model.layers.0.self_attn.v_proj',
    ],
  ])(
    '%s: every linear module calls the hook by its HF name; its delta changes the output',
    (_, config, names, target) => {
      const m = CausalLM.create(config, 1);
      randomizeWeights(m, 2);
      const ids = [[1, 2, 3]];
      const base = m.forward(ids);
      const zero = recorder(target, 0);
      m.setProjectionHook(zero);
      expect(m.projectionHook).toBe(zero);
      const same = m.forward(ids);
      const seen = zero.calls.map((c) => c[0]);
      for (const n of names) expect(seen).toContain(n);
      expect(seen.length).toBe(config === GPT2 ? 8 : 7);
      expect(zero.calls.every(([, shape, training]) => shape[0] === 3 && !training)).toBe(true);
      expect(Array.from(same.logits.dataSync())).toEqual(Array.from(base.logits.dataSync()));
      m.setProjectionHook(recorder(target, 0.5));
      const changed = m.forward(ids);
      let diff = 0;
      const a = changed.logits.dataSync();
      const b = base.logits.dataSync();
      for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
      expect(diff).toBeGreaterThan(1e-3);
      // Under a gradient tape the hook sees training = true, and gradients flow through its delta.
      const t = recorder(target, 1);
      m.setProjectionHook(t);
      const s = tf.variable(tf.scalar(0.5));
      m.setProjectionHook({
        delta: (n, x, ctx) =>
          t.delta(n, x, ctx) === null ? null : (tf.mul(tf.sum(x, 1, true), s) as tf.Tensor2D),
      });
      const { grads } = tf.variableGrads(() => tf.sum(m.forward(ids).logits) as tf.Scalar, [s]);
      expect(t.calls.some(([, , training]) => training)).toBe(true);
      expect(Math.abs(grads[s.name]!.dataSync()[0]!)).toBeGreaterThan(0);
      m.setProjectionHook(null);
      expect(m.projectionHook).toBeNull();
      expect(m.clone().projectionHook).toBeNull();
      tf.dispose([
        base.logits,
        base.hidden,
        same.logits,
        same.hidden,
        changed.logits,
        changed.hidden,
        s,
        grads[s.name]!,
      ]);
      m.dispose();
    },
  );
});
