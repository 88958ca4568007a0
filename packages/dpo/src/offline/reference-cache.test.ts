import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { computeReferenceLogprobs, referenceCacheKey, ReferenceLogprobCache } from './reference-cache.js';
import { sequenceLogprobSums } from './sequence-logprobs.js';
import { syntheticPairs, TINY_MODEL } from './test-fixtures.js';

/** Counts the forward passes of `model` (to prove a cache hit runs none). */
function countForwards(model: CausalLM): { calls: number } {
  const counter = { calls: 0 };
  const forward = model.forward.bind(model);
  model.forward = (...args: Parameters<CausalLM['forward']>) => {
    counter.calls++;
    return forward(...args);
  };
  return counter;
}

describe.each(TEST_BACKENDS)('ReferenceLogprobCache on %s', (backend) => {
  let reference: CausalLM;
  let dir: string;
  const pairs = syntheticPairs(24, 'cache');
  beforeAll(async () => {
    await useBackend(backend);
    reference = CausalLM.create(TINY_MODEL, 5, { trainable: false });
    dir = await mkdtemp(join(tmpdir(), 'relign-dpo-cache-'));
  });
  afterAll(async () => {
    reference.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('computes S_ref of both sides once, then serves it from memory without a forward pass', async () => {
    const forwards = countForwards(reference);
    const cache = new ReferenceLogprobCache();
    const first = await cache.get(reference, pairs, { padId: 0, batchSize: 16 });
    expect(first.source).toBe('computed');
    expect(forwards.calls).toBe(3); // 48 sequences, 16 per pass
    // The values are the chosen / rejected sequence sums.
    const direct = await sequenceLogprobSums(
      reference,
      pairs.flatMap((p) => [p.chosen, p.rejected]),
      { padId: 0, batchSize: 48 },
    );
    pairs.forEach((_, i) => {
      expect(first.logprobs.chosen[i]).toBeCloseTo(direct[2 * i]!, 4);
      expect(first.logprobs.rejected[i]).toBeCloseTo(direct[2 * i + 1]!, 4);
    });
    const calls = forwards.calls;
    const again = await cache.get(reference, pairs, { padId: 0, batchSize: 16 });
    expect(again.source).toBe('memory');
    expect(again.logprobs).toBe(first.logprobs);
    expect(forwards.calls).toBe(calls);
    // A hit costs the fingerprints only: well under the reference pass it replaces.
    expect(again.seconds).toBeLessThan(first.seconds);
  });

  it('persists to disk and is invalidated when the reference weights or the data change', async () => {
    const writer = new ReferenceLogprobCache({ dir });
    const computed = await writer.get(reference, pairs, { padId: 0 });
    expect(computed.source).toBe('computed');
    expect(await readdir(dir)).toEqual(['train.reference-logprobs.safetensors']);

    // A new process (fresh cache object) with the same reference and data reads the file.
    const reader = new ReferenceLogprobCache({ dir });
    const fromDisk = await reader.get(reference, pairs, { padId: 0 });
    expect(fromDisk.source).toBe('disk');
    expect(fromDisk.logprobs.key).toBe(computed.logprobs.key);
    expect(Array.from(fromDisk.logprobs.chosen)).toEqual(Array.from(computed.logprobs.chosen));
    expect(Array.from(fromDisk.logprobs.rejected)).toEqual(Array.from(computed.logprobs.rejected));

    // Data change: one token of one pair → a new key, recomputed (memory entry replaced).
    const edited = pairs.map((p) => ({ chosen: p.chosen, rejected: p.rejected }));
    const ids = edited[3]!.rejected.ids.slice();
    ids[ids.length - 2] = ids[ids.length - 2] === 7 ? 8 : 7;
    edited[3] = { chosen: edited[3]!.chosen, rejected: { ...edited[3]!.rejected, ids } };
    const afterData = await reader.get(reference, edited, { padId: 0 });
    expect(afterData.source).toBe('computed');
    expect(afterData.logprobs.key).not.toBe(computed.logprobs.key);
    expect(afterData.logprobs.rejected[3]).not.toBe(computed.logprobs.rejected[3]);
    expect(afterData.logprobs.chosen[3]).toBe(computed.logprobs.chosen[3]);

    // Reference change: one weight nudged by 1e-3 → a new key and new values.
    const v = [...reference.variables().values()][0]!;
    const saved = v.dataSync().slice() as Float32Array;
    const nudged = saved.slice();
    nudged[0]! += 1e-3;
    tf.tidy(() => v.assign(tf.tensor(nudged, v.shape)));
    try {
      expect(await referenceCacheKey(reference, pairs)).not.toBe(computed.logprobs.key);
      const afterWeights = await reader.get(reference, pairs, { padId: 0 });
      expect(afterWeights.source).toBe('computed');
      // The file now holds the new entry; the original one is gone (invalidated), not served for the new weights.
      const third = new ReferenceLogprobCache({ dir });
      expect((await third.get(reference, pairs, { padId: 0 })).source).toBe('disk');
    } finally {
      tf.tidy(() => v.assign(tf.tensor(saved, v.shape)));
    }
    // Back to the original weights: the file's key no longer matches, so it is recomputed, equal to the first values.
    const restored = await new ReferenceLogprobCache({ dir }).get(reference, pairs, { padId: 0 });
    expect(restored.source).toBe('computed');
    expect(Array.from(restored.logprobs.chosen)).toEqual(Array.from(computed.logprobs.chosen));
  });

  it('keeps one entry per slot and rejects bad slot names', async () => {
    const cache = new ReferenceLogprobCache();
    const evalPairs = syntheticPairs(4, 'eval');
    await cache.get(reference, pairs, { padId: 0 });
    expect((await cache.get(reference, evalPairs, { padId: 0, slot: 'eval' })).source).toBe('computed');
    expect((await cache.get(reference, pairs, { padId: 0 })).source).toBe('memory');
    expect((await cache.get(reference, evalPairs, { padId: 0, slot: 'eval' })).source).toBe('memory');
    await expect(cache.get(reference, pairs, { padId: 0, slot: '../x' })).rejects.toThrow(
      /slot must be a simple name/,
    );
    const direct = await computeReferenceLogprobs(reference, evalPairs, { padId: 0, batchSize: 3 });
    expect(direct.chosen.length).toBe(4);
  });
});
