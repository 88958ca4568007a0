import { describe, expect, it } from 'vitest';
import { configToJSON, extraConfigFields, innerDim, resolveConfig } from './config.js';

const BASE = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };

describe('resolveConfig', () => {
  it('reads the real GPT-2 config.json and fills HF defaults', () => {
    const gpt2 = {
      activation_function: 'gelu_new',
      architectures: ['GPT2LMHeadModel'],
      attn_pdrop: 0.1,
      bos_token_id: 50256,
      embd_pdrop: 0.1,
      eos_token_id: 50256,
      initializer_range: 0.02,
      layer_norm_epsilon: 1e-5,
      model_type: 'gpt2',
      n_ctx: 1024,
      n_embd: 768,
      n_head: 12,
      n_layer: 12,
      n_positions: 1024,
      resid_pdrop: 0.1,
      summary_activation: null,
      summary_first_dropout: 0.1,
      summary_proj_to_labels: true,
      summary_type: 'cls_index',
      summary_use_proj: true,
      task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } },
      vocab_size: 50257,
    };
    const c = resolveConfig(gpt2);
    expect(c).toEqual({
      ...BASE,
      n_inner: null,
      layer_norm_epsilon: 1e-5,
      initializer_range: 0.02,
      activation_function: 'gelu_new',
      scale_attn_weights: true,
      bos_token_id: 50256,
      eos_token_id: 50256,
    });
    expect(innerDim(c)).toBe(3072);
    expect(extraConfigFields(gpt2)).toEqual({});
    expect(extraConfigFields({ ...gpt2, my_field: 1 })).toEqual({ my_field: 1 });
  });

  it('defaults bos/eos to the last id and accepts n_inner', () => {
    const c = resolveConfig({ vocab_size: 10, n_positions: 8, n_embd: 4, n_layer: 0, n_head: 1, n_inner: 6 });
    expect([c.bos_token_id, c.eos_token_id]).toEqual([9, 9]);
    expect(innerDim(c)).toBe(6);
  });

  it.each([
    [{ ...BASE, n_head: 5 }, /n_head \(5\) does not divide n_embd \(768\)/],
    [{ ...BASE, vocab_size: undefined }, /vocab_size is missing/],
    [{ ...BASE, n_layer: -1 }, /n_layer must be a non-negative integer, got -1/],
    [{ ...BASE, n_embd: 7.5 }, /n_embd must be a positive integer/],
    [{ ...BASE, n_inner: 0 }, /n_inner must be a positive integer/],
    [{ ...BASE, layer_norm_epsilon: 0 }, /layer_norm_epsilon must be a positive number/],
    [{ ...BASE, activation_function: 'relu' }, /activation_function is "relu", which is not implemented/],
    [
      { ...BASE, scale_attn_by_inverse_layer_idx: true },
      /scale_attn_by_inverse_layer_idx is true, which is not supported/,
    ],
    [{ ...BASE, reorder_and_upcast_attn: true }, /reorder_and_upcast_attn is true/],
    [{ ...BASE, add_cross_attention: true }, /add_cross_attention/],
    [{ ...BASE, tie_word_embeddings: false }, /tie_word_embeddings is false/],
    [{ ...BASE, model_type: 'llama' }, /model_type is "llama", not "gpt2"/],
    [{ ...BASE, eos_token_id: 50257 }, /eos_token_id must be an integer in \[0, vocab_size=50257\)/],
  ])('rejects %j', (raw, message) => {
    expect(() => resolveConfig(raw as Record<string, unknown>, 'x/config.json')).toThrow(message);
    expect(() => resolveConfig(raw as Record<string, unknown>, 'x/config.json')).toThrow(
      /^x\/config\.json: /,
    );
  });

  it('configToJSON writes HF fields and round-trips', () => {
    const c = resolveConfig({ vocab_size: 10, n_positions: 8, n_embd: 4, n_layer: 1, n_head: 2 });
    const j = configToJSON(c, { note: 'kept' });
    expect(j).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      activation_function: 'gelu_new',
      n_inner: null,
      n_ctx: 8,
      bos_token_id: 9,
      eos_token_id: 9,
      note: 'kept',
    });
    expect(resolveConfig(JSON.parse(JSON.stringify(j)))).toEqual(c);
  });
});
