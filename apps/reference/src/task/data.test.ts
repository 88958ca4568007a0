import { describe, expect, it } from 'vitest';
import { buildConfig } from '../config/load.js';
import { loadTaskData, splitSentence } from './data.js';

describe('splitSentence', () => {
  it('splits after k words, keeping at least one word of completion', () => {
    expect(splitSentence('The food was really good.', 3)).toEqual({
      prompt: 'The food was',
      completion: ' really good.',
    });
    expect(splitSentence('  Great   place!  ', 4)).toEqual({ prompt: 'Great', completion: ' place!' });
    expect(splitSentence('Wow.', 2)).toBeUndefined();
  });
});

describe('loadTaskData', () => {
  it('is deterministic in the seed, keeps eval and RL prompts apart, and respects the word range', async () => {
    const cfg = buildConfig({ preset: 'tiny' });
    const a = await loadTaskData(cfg);
    const b = await loadTaskData(cfg);
    expect(a.evalPrompts).toEqual(b.evalPrompts);
    expect(a.evalPrompts).toHaveLength(cfg.data.evalPrompts);
    expect(a.rlPrompts.length + a.evalPrompts.length).toBe(a.heldOut.length);
    expect(a.labelPrompts).toHaveLength(cfg.label.prompts);
    for (const s of [...a.train, ...a.heldOut]) {
      const n = s.prompt.split(' ').length;
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(cfg.data.promptWordsMax);
      expect(s.completion.startsWith(' ')).toBe(true);
    }
    // Held-out texts never appear among the training sentences.
    const train = new Set(a.train.map((s) => s.prompt + s.completion));
    expect(a.heldOut.some((s) => train.has(s.prompt + s.completion))).toBe(false);
    const c = await loadTaskData(buildConfig({ preset: 'tiny', flags: new Map([['seed', '1']]) }));
    expect(c.evalPrompts).not.toEqual(a.evalPrompts);
  });

  it('rejects more eval prompts than held-out sentences', async () => {
    const cfg = buildConfig({ preset: 'tiny', flags: new Map([['data.evalPrompts', '5000']]) });
    await expect(loadTaskData(cfg)).rejects.toThrow(
      /data\.evalPrompts \(5000\) must be smaller than the \d+ held-out sentences/,
    );
  });
});
