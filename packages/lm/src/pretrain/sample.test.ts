import { createRng } from '@relign/tensor';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '../model/causal-lm.js';
import { sampleTokens, sampleTopK } from './sample.js';

describe('sampleTopK', () => {
  it('samples from the temperature-scaled top k by the uniform draw (hand-checked)', () => {
    // Top 2 of [ln 1, ln 3, -inf-ish]: weights 3 (id 1) then 1 (id 0); the cut is at u = 0.75.
    const logits = [0, Math.log(3), -50];
    expect(sampleTopK(logits, 1, 2, 0.74)).toBe(1);
    expect(sampleTopK(logits, 1, 2, 0.76)).toBe(0);
    expect(sampleTopK(logits, 1, 1, 0.99)).toBe(1); // top-1 = argmax
    // Temperature 0.5 squares the weights: 9 : 1, the cut moves to 0.9.
    expect(sampleTopK(logits, 0.5, 2, 0.89)).toBe(1);
    expect(sampleTopK(logits, 0.5, 2, 0.91)).toBe(0);
  });
});

describe.each(TEST_BACKENDS)('sampleTokens on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('is seeded, respects limits and leaks nothing', async () => {
    const model = CausalLM.create({ vocab_size: 12, n_positions: 10, n_embd: 8, n_layer: 1, n_head: 2 }, 4);
    const a = await sampleTokens(model, [1, 2], {
      maxNewTokens: 5,
      rng: createRng(1),
      topK: 0,
      temperature: 1,
    });
    const b = await sampleTokens(model, [1, 2], {
      maxNewTokens: 5,
      rng: createRng(1),
      topK: 0,
      temperature: 1,
    });
    expect(a).toEqual(b);
    expect(a).toHaveLength(5);
    // The context limit (n_positions = 10) stops generation: 7 prompt tokens leave room for 3.
    expect(
      await sampleTokens(model, [1, 2, 3, 4, 5, 6, 7], { maxNewTokens: 20, rng: createRng(2) }),
    ).toHaveLength(3);
    // Stopping at EOS: with top-1 sampling the first token is the argmax; call it EOS and generation ends there.
    const first = (await sampleTokens(model, [1], { maxNewTokens: 1, rng: createRng(3), topK: 1 }))[0]!;
    expect(
      await sampleTokens(model, [1], { maxNewTokens: 8, rng: createRng(3), topK: 1, eosId: first }),
    ).toEqual([first]);
    await assertNoLeaks(() => sampleTokens(model, [1, 2], { maxNewTokens: 4, rng: createRng(5) }), {
      label: 'sampleTokens',
    });
    model.dispose();
  });
});
