import { describe, expect, it } from 'vitest';
import { resolveModelConfig, modelConfigToJSON, modelExtraFields, modelDims } from './model-config.js';
import { inverseFrequencies } from './rope.js';
import type { LlamaConfig } from './llama-config.js';

/** Shape fields of SmolLM2-135M's config.json (the rest defaulted). */
const SMOL = {
  model_type: 'llama',
  vocab_size: 49152,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  tie_word_embeddings: true,
  rope_theta: 100000,
  max_position_embeddings: 8192,
};

describe('Llama-family configs', () => {
  it('fills HF defaults and derives head_dim; dims are architecture-independent', () => {
    const c = resolveModelConfig(SMOL, 'config.json') as LlamaConfig;
    expect(c).toMatchObject({
      head_dim: 64,
      rms_norm_eps: 1e-6,
      hidden_act: 'silu',
      attention_bias: false,
      rope_scaling: null,
    });
    expect(modelDims(c)).toEqual({
      vocabSize: 49152,
      hiddenSize: 576,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      maxPositions: 8192,
    });
    const q3 = resolveModelConfig({ ...SMOL, model_type: 'qwen3', head_dim: undefined }) as LlamaConfig;
    expect(q3.head_dim).toBe(128); // Qwen3Config's default, not hidden/heads
    const q2 = resolveModelConfig({ ...SMOL, model_type: 'qwen2' }) as LlamaConfig;
    expect(q2.attention_bias).toBe(true);
    expect(resolveModelConfig({ ...SMOL, eos_token_id: [1, 2] })).toMatchObject({ eos_token_id: [1, 2] });
  });

  it.each([
    [{ ...SMOL, model_type: 'mistral' }, /config\.json: model_type is "mistral", which is not supported/],
    [{ ...SMOL, hidden_size: undefined }, /config\.json: hidden_size is missing/],
    [
      { ...SMOL, num_key_value_heads: 4 },
      /config\.json: num_key_value_heads \(4\) does not divide num_attention_heads \(9\)/,
    ],
    [
      { ...SMOL, num_attention_heads: 7, num_key_value_heads: 7 },
      /config\.json: num_attention_heads \(7\) does not divide hidden_size \(576\). Set "head_dim"/,
    ],
    [{ ...SMOL, num_key_value_heads: 1, head_dim: 7 }, /config\.json: head_dim \(7\) must be even/],
    [{ ...SMOL, hidden_act: 'gelu' }, /config\.json: hidden_act is "gelu", which is not implemented/],
    [
      { ...SMOL, rope_scaling: { rope_type: 'yarn', factor: 4 } },
      /config\.json: rope_scaling\.rope_type is "yarn"/,
    ],
    [
      { ...SMOL, rope_scaling: { type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } },
      /rope_scaling\.original_max_position_embeddings must be a positive integer/,
    ],
    [{ ...SMOL, model_type: 'qwen2', use_sliding_window: true }, /config\.json: use_sliding_window is true/],
    [{ ...SMOL, rms_norm_eps: 0 }, /config\.json: rms_norm_eps must be a finite number > 0/],
    [{ ...SMOL, tie_word_embeddings: 'yes' }, /config\.json: tie_word_embeddings must be true or false/],
    [
      { ...SMOL, eos_token_id: 49152 },
      /config\.json: eos_token_id must be a token id or a list of token ids in \[0, vocab_size=49152\)/,
    ],
  ])('rejects %#, naming the field', (raw, re) => {
    expect(() => resolveModelConfig(raw as Record<string, unknown>, 'config.json')).toThrow(re);
  });

  it('writes config.json back for transformers, keeping unknown fields', () => {
    const raw = { ...SMOL, model_type: 'qwen2', custom: 1, torch_dtype: 'bfloat16' };
    const c = resolveModelConfig(raw);
    const json = modelConfigToJSON(c, modelExtraFields(c, raw));
    expect(json).toMatchObject({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      custom: 1,
      torch_dtype: 'float32',
    });
    expect(json).not.toHaveProperty('attention_bias'); // Qwen2 has none: its q/k/v biases are fixed
    expect(resolveModelConfig(json)).toEqual(c);
  });

  it('llama3 rope scaling: high frequencies kept, low ones divided by factor, blended between', () => {
    const base = resolveModelConfig({ ...SMOL, head_dim: 64 }) as LlamaConfig;
    const scaled = resolveModelConfig({
      ...SMOL,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    }) as LlamaConfig;
    const a = inverseFrequencies(base);
    const b = inverseFrequencies(scaled);
    expect(b[0]).toBe(a[0]); // wavelength 2π < 8192/4
    expect(b[31]! / a[31]!).toBeCloseTo(1 / 32, 6); // wavelength > 8192
    const mid = [...a].findIndex((f) => (2 * Math.PI) / f > 2048 && (2 * Math.PI) / f < 8192);
    expect(b[mid]! / a[mid]!).toBeGreaterThan(1 / 32);
    expect(b[mid]! / a[mid]!).toBeLessThan(1);
  });
});
