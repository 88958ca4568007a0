/**
 * The Llama/Qwen blocks run their RMSNorms and SwiGLU as fused kernels on wasm (forward and backward,
 * @relign/tensor's fusedRmsNorm / fusedSwiglu) and as plain tfjs ops on cpu: the two must agree, values
 * and every parameter gradient, at sizes that exercise the kernels' scalar tails (d not a multiple of 4).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { CausalLM } from './causal-lm.js';
import { relativeError } from './llama-test-helpers.js';

const CONFIG = {
  model_type: 'qwen3' as const, // q/k norms too: RMSNorm over each head's 6 values
  vocab_size: 19,
  hidden_size: 14,
  intermediate_size: 22,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 6,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
};
const IDS = [
  [1, 5, 9, 2, 18, 7, 3],
  [8, 8, 13, 0, 1, 6, 17],
];

/** Logits and the gradient of a weighted logit sum w.r.t. every parameter, on `backend`. */
async function run(backend: 'cpu' | 'wasm', weights: Awaited<ReturnType<CausalLM['tensors']>>) {
  await useBackend(backend);
  const m = CausalLM.fromWeights(CONFIG, weights);
  const w = tf.tensor3d(
    Float32Array.from({ length: 2 * 7 * 19 }, (_, i) => Math.sin(i)),
    [2, 7, 19],
  );
  const logits = tf.tidy(() => m.forward(IDS).logits);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(m.forward(IDS).logits, w)) as tf.Scalar);
  const out = { logits: await logits.data(), grads: new Map<string, Float32Array>() };
  for (const [name, v] of m.trainableVariables())
    out.grads.set(name, (await grads[v.name]!.data()) as Float32Array);
  if (backend === 'wasm') {
    const loss = () => tf.sum(tf.mul(m.forward(IDS).logits, w)) as tf.Scalar;
    const { kernelNames } = await tf.profile(() => Object.values(tf.variableGrads(loss).grads));
    for (const k of ['RelignRmsNorm', 'RelignRmsNormGrad', 'RelignSwiglu', 'RelignSwigluGrad'])
      expect(kernelNames).toContain(k);
    expect(kernelNames).not.toContain('Sigmoid');
    expect(kernelNames).not.toContain('Rsqrt');
    await assertNoLeaks(
      () =>
        Object.values(tf.variableGrads(loss)).flatMap((v) =>
          v instanceof tf.Tensor ? [v] : Object.values(v),
        ),
      { label: 'llama fused backward' },
    );
  }
  tf.dispose([logits, w, value, ...Object.values(grads)]);
  m.dispose();
  return out;
}

describe('Llama-family blocks with fused RMSNorm / SwiGLU', () => {
  afterAll(() => useBackend('cpu'));

  it('wasm (fused kernels) equals cpu (plain ops): logits and all parameter gradients', async () => {
    await useBackend('cpu');
    const source = CausalLM.create(CONFIG, 3);
    const weights = await source.tensors();
    source.dispose();
    const cpu = await run('cpu', weights);
    const wasm = await run('wasm', weights);
    expect(relativeError(wasm.logits, cpu.logits)).toBeLessThan(1e-5);
    expect(cpu.grads.size).toBeGreaterThan(10);
    for (const [name, g] of cpu.grads) {
      expect(relativeError(wasm.grads.get(name)!, g), name).toBeLessThan(1e-4);
    }
  });
});
