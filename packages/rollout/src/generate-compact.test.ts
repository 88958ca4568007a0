import type { CausalLM } from '@relign/lm';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRows } from './generate.js';
import type { GenerateOptions } from './options.js';
import { testModel } from './test-helpers.js';

// Batch compaction (finished rows leave the KV cache) must not change a single output bit: same tokens,
// log-probs, lengths and flags as decoding every row to the end.
const RAGGED = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10], [11]];
const EQUAL = [
  [12, 13, 14],
  [15, 16, 17],
  [18, 19, 20],
];
const STOPS = [0, 1, 2, 3, 4, 5];

const CASES: {
  name: string;
  prompts: number[][];
  options: { temperature: number; topK?: number; topP?: number; seed: number };
}[] = [
  { name: 'sampled, ragged', prompts: RAGGED, options: { temperature: 0.9, seed: 7 } },
  { name: 'greedy, ragged', prompts: RAGGED, options: { temperature: 0, seed: 1 } },
  { name: 'top-k, equal lengths', prompts: EQUAL, options: { temperature: 1, topK: 6, seed: 3 } },
  { name: 'top-p, ragged', prompts: RAGGED, options: { temperature: 0.8, topP: 0.7, seed: 11 } },
  {
    name: 'top-k + top-p, equal',
    prompts: EQUAL,
    options: { temperature: 1.2, topK: 8, topP: 0.8, seed: 2 },
  },
];

describe.each(TEST_BACKENDS)('generate batch compaction on %s', (backend) => {
  let model: CausalLM;
  beforeAll(async () => {
    await useBackend(backend);
    model = testModel();
  });
  afterAll(() => model.dispose());

  it.each(CASES)('gives bit-identical batches with and without compaction: $name', async (c) => {
    const options: GenerateOptions = {
      maxNewTokens: 14,
      stopTokenIds: STOPS,
      responsesPerPrompt: 3,
      ...c.options,
    };
    const plain = await generateRows(model, c.prompts, options, false);
    const compact = await generateRows(model, c.prompts, options, true);
    // The case must exercise compaction: a row stops while another one decodes on after it.
    const L = plain.responseLengths;
    const firstStop = Math.min(...Array.from(L).filter((_, b) => plain.endedWithEos[b] === 1));
    expect(firstStop).toBeLessThan(Math.max(...L));
    expect(compact.responseWidth).toBe(plain.responseWidth);
    expect(Array.from(compact.responseLengths)).toEqual(Array.from(L));
    expect(Array.from(compact.responseTokens)).toEqual(Array.from(plain.responseTokens));
    // Bitwise: compare the float32 bit patterns, not values within a tolerance.
    expect(Array.from(new Uint32Array(compact.logprobs.buffer))).toEqual(
      Array.from(new Uint32Array(plain.logprobs.buffer)),
    );
    expect(Array.from(compact.endedWithEos)).toEqual(Array.from(plain.endedWithEos));
    expect(Array.from(compact.truncated)).toEqual(Array.from(plain.truncated));
  });

  // The arithmetic task's batch (32 prompts x 8 answers = 256 rows) once failed at its first rollout with
  // "every logit of a row is -Infinity" (a step's logits held fewer rows than were decoding). More than 256
  // rows, ragged, most rows stopping early: every step must sample every running row, as without compaction.
  it('samples a batch of more than 256 rows, as without compaction', async () => {
    const prompts = Array.from({ length: 36 }, (_, i) =>
      Array.from({ length: 1 + (i % 5) }, (_, t) => 6 + ((i * 7 + t * 3) % 40)),
    );
    const options: GenerateOptions = {
      maxNewTokens: 6,
      stopTokenIds: STOPS,
      responsesPerPrompt: 8,
      temperature: 1,
      seed: 5,
    };
    const plain = await generateRows(model, prompts, options, false);
    const compact = await generateRows(model, prompts, options, true);
    expect(compact.batchSize).toBe(288);
    expect(Array.from(compact.responseTokens)).toEqual(Array.from(plain.responseTokens));
    expect(Array.from(new Uint32Array(compact.logprobs.buffer))).toEqual(
      Array.from(new Uint32Array(plain.logprobs.buffer)),
    );
    const L = compact.responseLengths;
    for (let b = 0; b < compact.batchSize; b++) {
      for (let t = 0; t < L[b]!; t++)
        expect(Number.isFinite(compact.logprobs[b * compact.responseWidth + t])).toBe(true);
    }
  });

  it('leaks no tensors while compacting', async () => {
    await assertNoLeaks(
      () =>
        generateRows(
          model,
          RAGGED,
          { maxNewTokens: 10, stopTokenIds: STOPS, responsesPerPrompt: 3, seed: 7 },
          true,
        ),
      { label: 'generate with compaction' },
    );
  });
});
