import { describe, expect, it } from 'vitest';
import { PromptSampler } from './prompt-sampler.js';

describe('PromptSampler', () => {
  it('visits every prompt once per epoch, in a new seeded order each epoch', () => {
    const s = new PromptSampler(7, 'seed');
    const seen = s.next(21);
    for (let e = 0; e < 3; e++)
      expect([...seen.slice(7 * e, 7 * e + 7)].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const epochs = [0, 1, 2].map((e) => seen.slice(7 * e, 7 * e + 7).join());
    expect(new Set(epochs).size).toBeGreaterThan(1);
    expect(s.samplesSeen).toBe(21);
    // Same seed, same order; another seed, another order.
    expect(new PromptSampler(7, 'seed').next(21)).toEqual(seen);
    expect(new PromptSampler(7, 'other').next(21)).not.toEqual(seen);
  });

  it('continues from a position exactly as an uninterrupted sampler, whatever the chunking', () => {
    const straight = new PromptSampler(5, 3).next(17);
    const a = new PromptSampler(5, 3);
    const part = [...a.next(3), ...a.next(4)];
    const resumed = new PromptSampler(5, 3, a.samplesSeen);
    expect([...part, ...resumed.next(10)]).toEqual(straight);
  });

  it('rejects an empty prompt set and a bad position', () => {
    expect(() => new PromptSampler(0, 1)).toThrow('empty');
    expect(() => new PromptSampler(3, 1, -1)).toThrow('position must be an integer >= 0');
  });
});
