import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '@relign/lm';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from './generate.js';
import { tokenizerStopOptions, type GenerateOptions } from './options.js';
import { responseMaskArray, type RolloutBatch } from './batch.js';
import { computeLogprobs, truncationSupport } from './scoring.js';
import { logSoftmaxAt, rowReference, testModel } from './test-helpers.js';

const PROMPTS = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10], [11]];
const STOPS = [0, 1, 2, 3, 4, 5];
const BASE: GenerateOptions = {
  maxNewTokens: 10,
  temperature: 0.7,
  stopTokenIds: STOPS,
  responsesPerPrompt: 2,
  seed: 1,
};

/** Largest |ratio − 1| over valid tokens of exp(recomputed − sampled) log-probs; padding must be 0 in both. */
function maxRatioError(batch: RolloutBatch, recomputed: Float32Array): number {
  const { batchSize: B, responseWidth: Tr } = batch;
  let worst = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < Tr; t++) {
      const i = b * Tr + t;
      if (t < batch.responseLengths[b]!)
        worst = Math.max(worst, Math.abs(Math.exp(recomputed[i]! - batch.logprobs[i]!) - 1));
      else {
        expect(Math.abs(recomputed[i]!)).toBe(0); // may be -0 (a log-prob times a 0 mask)
        expect(batch.logprobs[i]).toBe(0);
      }
    }
  }
  return worst;
}

async function recompute(
  model: CausalLM,
  batch: RolloutBatch,
  truncation: 'none' | 'as-sampled',
): Promise<Float32Array> {
  const support = truncation === 'as-sampled' ? await truncationSupport(model, batch) : undefined;
  const lp = computeLogprobs(model, batch, { truncation, ...(support ? { support } : {}) });
  const data = lp.dataSync() as Float32Array;
  lp.dispose();
  return data;
}

describe.each(TEST_BACKENDS)('generate on %s', (backend) => {
  let model: CausalLM;
  beforeAll(async () => {
    await useBackend(backend);
    model = testModel();
  });
  afterAll(() => model.dispose());

  it('records log-probs that a recompute reproduces (importance ratio 1 within 1e-4)', async () => {
    const batch = await generate(model, PROMPTS, BASE);
    expect(maxRatioError(batch, await recompute(model, batch, 'none'))).toBeLessThan(1e-4);
    // Independent check on unpadded, uncached rows: the recorded log-prob is log softmax(z/τ)[y].
    for (let b = 0; b < batch.batchSize; b++) {
      const ref = rowReference(model, batch, b);
      ref.logits.forEach((z, t) => {
        const y = batch.responseTokens[b * batch.responseWidth + t]!;
        expect(Math.abs(logSoftmaxAt(z, y, 0.7) - batch.logprobs[b * batch.responseWidth + t]!)).toBeLessThan(
          1e-4,
        );
      });
    }
  });

  it.each([
    { topK: 5, topP: 1 },
    { topK: 0, topP: 0.6 },
    { topK: 8, topP: 0.7 },
  ])('samples from the truncated distribution and recomputes it exactly: %o', async ({ topK, topP }) => {
    const batch = await generate(model, PROMPTS, { ...BASE, topK, topP, maxNewTokens: 12, seed: 5 });
    expect(batch.options).toMatchObject({ topK, topP, temperature: 0.7 });
    expect(maxRatioError(batch, await recompute(model, batch, 'as-sampled'))).toBeLessThan(1e-4);
    // Without truncation the same tokens get less probability (the cut mass comes back), strictly so somewhere.
    const full = await recompute(model, batch, 'none');
    let gap = 0;
    for (let b = 0; b < batch.batchSize; b++) {
      for (let t = 0; t < batch.responseLengths[b]!; t++) {
        const i = b * batch.responseWidth + t;
        expect(full[i]!).toBeLessThanOrEqual(batch.logprobs[i]! + 1e-5);
        gap = Math.max(gap, batch.logprobs[i]! - full[i]!);
      }
    }
    expect(gap).toBeGreaterThan(0.01);
    // Every sampled token lies in the support: fewer than topK tokens beat it, and the mass of the
    // tokens ranked before it (under the renormalised top-k distribution) is below topP.
    for (let b = 0; b < batch.batchSize; b++) {
      rowReference(model, batch, b).logits.forEach((z, t) => {
        const y = batch.responseTokens[b * batch.responseWidth + t]!;
        const order = [...z.keys()].sort((i, j) => z[j]! - z[i]! || i - j);
        const rank = order.indexOf(y);
        if (topK > 0) expect(rank).toBeLessThan(topK);
        const kept = topK > 0 ? order.slice(0, topK) : order;
        const w = kept.map((i) => Math.exp(z[i]! / 0.7));
        const total = w.reduce((a, c) => a + c, 0);
        const before = w.slice(0, rank).reduce((a, c) => a + c, 0) / total;
        expect(before).toBeLessThan(topP + 1e-6);
      });
    }
  });

  it('gives the same batch for the same seed and a different one for another seed', async () => {
    const a = await generate(model, PROMPTS, { ...BASE, topK: 10 });
    const b = await generate(model, PROMPTS, { ...BASE, topK: 10 });
    expect(b).toEqual(a);
    const c = await generate(model, PROMPTS, { ...BASE, topK: 10, seed: 2 });
    expect(c.responseTokens).not.toEqual(a.responseTokens);
  });

  it('includes the stop token in the response and its length, and marks rows that hit maxNewTokens', async () => {
    const stops = new Set(STOPS);
    const batch = await generate(model, PROMPTS, {
      ...BASE,
      maxNewTokens: 6,
      responsesPerPrompt: 3,
      seed: 7,
      padTokenId: 47,
    });
    const { batchSize: B, responseWidth: Tr } = batch;
    let eos = 0;
    let cut = 0;
    for (let b = 0; b < B; b++) {
      const len = batch.responseLengths[b]!;
      const row = [...batch.responseTokens.subarray(b * Tr, (b + 1) * Tr)];
      const firstStop = row.findIndex((y, t) => t < len && stops.has(y));
      if (batch.endedWithEos[b]) {
        eos++;
        expect(firstStop).toBe(len - 1); // the stop token is the last counted token, and the first stop
        expect(batch.truncated[b]).toBe(0);
      } else {
        cut++;
        expect(firstStop).toBe(-1);
        expect(len).toBe(6);
        expect(batch.truncated[b]).toBe(1);
      }
      for (let t = len; t < Tr; t++) {
        expect(row[t]).toBe(47); // padding after the first stop token never counts
        expect(batch.logprobs[b * Tr + t]).toBe(0);
      }
    }
    expect(eos).toBeGreaterThan(0);
    expect(cut).toBeGreaterThan(0);
    expect(Tr).toBe(Math.max(...batch.responseLengths));

    const none = await generate(model, PROMPTS, { ...BASE, maxNewTokens: 4, stopTokenIds: [] });
    expect([...none.truncated]).toEqual(new Array(none.batchSize).fill(1));
    expect([...none.responseLengths]).toEqual(new Array(none.batchSize).fill(4));
    expect(none.responseWidth).toBe(4);
  });

  it('keeps the responses of a prompt adjacent with one group id, prompts left-padded', async () => {
    const batch = await generate(model, PROMPTS, {
      ...BASE,
      responsesPerPrompt: 3,
      policyVersion: 9,
      padTokenId: 40,
    });
    expect(batch.batchSize).toBe(12);
    expect(batch.responsesPerPrompt).toBe(3);
    expect(batch.policyVersion).toBe(9);
    expect([...batch.groupIds]).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    expect([...batch.promptLengths]).toEqual([5, 5, 5, 2, 2, 2, 3, 3, 3, 1, 1, 1]);
    expect(batch.promptWidth).toBe(5);
    expect([...batch.promptTokens.subarray(3 * 5, 4 * 5)]).toEqual([40, 40, 40, 6, 7]);
    expect([...batch.promptTokens.subarray(9 * 5, 10 * 5)]).toEqual([40, 40, 40, 40, 11]);
  });

  it('decodes greedily (τ = 0) with the same tokens alone, in a padded batch, and without the cache', async () => {
    const opts = { ...BASE, temperature: 0, responsesPerPrompt: 1, stopTokenIds: [], maxNewTokens: 6 };
    const together = await generate(model, PROMPTS, opts);
    expect([...together.logprobs]).toEqual(new Array(together.logprobs.length).fill(0));
    for (let g = 0; g < PROMPTS.length; g++) {
      const alone = await generate(model, [PROMPTS[g]!], opts);
      const row = [...together.responseTokens.subarray(g * 6, (g + 1) * 6)];
      expect([...alone.responseTokens]).toEqual(row);
      // Reference: argmax of a full forward over the whole sequence so far, no cache, no padding.
      const seq = [...PROMPTS[g]!];
      for (let t = 0; t < 6; t++) {
        const next = tf.tidy(() => {
          const { logits } = model.forward([seq]);
          return tf.argMax(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, -1]), 2).dataSync()[0]!;
        });
        expect(row[t]).toBe(next);
        seq.push(next);
      }
    }
  });

  it("ends a row at any of a tokenizer's stop ids (the second one too) and pads it with padId", async () => {
    const greedy = { ...BASE, temperature: 0, responsesPerPrompt: 1, maxNewTokens: 6 };
    const free = await generate(model, PROMPTS, { ...greedy, stopTokenIds: [] });
    const row0 = [...free.responseTokens.subarray(0, 6)];
    // The second stop id: row 0's first token that did not occur before it; EOS: an id no row produces.
    const at = row0.findIndex((y, t) => t > 0 && !row0.slice(0, t).includes(y));
    const second = row0[at]!;
    const used = new Set(free.responseTokens);
    const eos = [...Array(47).keys()].find((id) => !used.has(id) && id !== second)!;
    const pad = 47;
    expect(tokenizerStopOptions({ eosId: 5 })).toEqual({ stopTokenIds: [5], padTokenId: 5 });
    const opts = tokenizerStopOptions({ eosId: eos, stopIds: [eos, second], padId: pad });
    expect(opts).toEqual({ stopTokenIds: [eos, second], padTokenId: pad });
    const batch = await generate(model, PROMPTS, { ...greedy, ...opts });
    const Tr = batch.responseWidth;
    expect(batch.responseLengths[0]).toBe(at + 1);
    expect(batch.endedWithEos[0]).toBe(1);
    expect(batch.truncated[0]).toBe(0);
    expect([...batch.responseTokens.subarray(0, at + 1)]).toEqual(row0.slice(0, at + 1));
    const mask = responseMaskArray(batch);
    for (let t = at + 1; t < Tr; t++) {
      expect(batch.responseTokens[t]).toBe(pad);
      expect(mask[t]).toBe(0);
    }
    expect(mask[at]).toBe(1); // the stop token itself counts (docs/algorithms.md §0)
    // EOS alone (what the app passed before) does not end the row: it runs to maxNewTokens.
    const eosOnly = await generate(model, PROMPTS, { ...greedy, ...tokenizerStopOptions({ eosId: eos }) });
    expect(eosOnly.responseLengths[0]).toBe(6);
    expect(eosOnly.truncated[0]).toBe(1);
  });

  it('leaks no tensors across calls', async () => {
    await assertNoLeaks(
      async () => {
        const batch = await generate(model, PROMPTS, { ...BASE, topP: 0.9, maxNewTokens: 5 });
        const support = await truncationSupport(model, batch);
        return computeLogprobs(model, batch, { truncation: 'as-sampled', support });
      },
      { label: 'generate + computeLogprobs' },
    );
  });

  it('rejects bad prompts and options with errors naming them', async () => {
    await expect(generate(model, [], BASE)).rejects.toThrow(/prompts must be a non-empty array/);
    await expect(generate(model, [[1], []], BASE)).rejects.toThrow(/prompts\[1\] must be a non-empty/);
    await expect(generate(model, [[1, 48]], BASE)).rejects.toThrow(
      /prompts\[0\]\[1\] = 48 is not a token id in \[0, 48\)/,
    );
    await expect(generate(model, [[1]], { ...BASE, maxNewTokens: 40 })).rejects.toThrow(
      /exceeds the model's n_positions=40/,
    );
    await expect(generate(model, [[1]], { ...BASE, maxNewTokens: 0 })).rejects.toThrow(
      /maxNewTokens must be an integer >= 1/,
    );
    await expect(generate(model, [[1]], { ...BASE, temperature: -1 })).rejects.toThrow(
      /temperature must be a finite number >= 0/,
    );
    await expect(generate(model, [[1]], { ...BASE, topP: 0 })).rejects.toThrow(/topP must be in \(0, 1\]/);
    await expect(generate(model, [[1]], { ...BASE, topK: 1.5 })).rejects.toThrow(
      /topK must be an integer >= 0/,
    );
    await expect(generate(model, [[1]], { ...BASE, responsesPerPrompt: 0 })).rejects.toThrow(
      /responsesPerPrompt/,
    );
    await expect(generate(model, [[1]], { ...BASE, stopTokenIds: [99] })).rejects.toThrow(
      /stopTokenIds contains 99/,
    );
    await expect(
      generate(model, [[1]], { ...BASE, stopTokenIds: undefined } as unknown as GenerateOptions),
    ).rejects.toThrow(/stopTokenIds must be an array/);
  });
});
