import { describe, expect, it } from 'vitest';
import { collate } from './collate.js';
import { tokenizePromptCompletion, type TextTokenizer } from './tokenize.js';

/** One id per character: a..z -> 1..26, space -> 27; EOS = PAD = 0 (GPT-2 style: pad == eos). */
const charTok: TextTokenizer = {
  encode: (s) => [...s].map((c) => (c === ' ' ? 27 : c.charCodeAt(0) - 96)),
  eosId: 0,
  padId: 0,
  bosId: 28,
};

describe('collate', () => {
  it('right-pads and masks exactly the completion incl. EOS when pad == eos (hand-checked)', () => {
    // "ab" -> "c": ids [1,2,3,EOS]; "d" -> "ef": ids [4,5,6,EOS]; "" -> "g": ids [7,EOS].
    const { examples } = tokenizePromptCompletion(
      [
        { prompt: 'ab', completion: 'c' },
        { prompt: 'd', completion: 'ef' },
        { prompt: '', completion: 'g' },
      ],
      charTok,
      { maxLength: 8 },
    );
    const b = collate(examples, { padId: charTok.padId });
    expect(b.seqLen).toBe(4);
    expect(Array.from(b.inputIds)).toEqual([1, 2, 3, 0, 4, 5, 6, 0, 7, 0, 0, 0]);
    expect(Array.from(b.attentionMask)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    // Row 0: targets c, EOS. Row 1: e, f, EOS. Row 2: the first token has no predecessor, so only EOS;
    // its pads (also id 0 = EOS) are not targets.
    expect(Array.from(b.lossMask)).toEqual([0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0]);
    expect(b.numTargets).toBe(6);
    expect(Array.from(b.lengths)).toEqual([4, 4, 2]);
    expect(Array.from(b.promptLengths)).toEqual([2, 1, 0]);
  });

  it('pads to padTo and rejects inconsistent input', () => {
    const ex = { ids: Int32Array.from([5, 6]), promptLength: 1, length: 2 };
    expect(collate([ex], { padId: 9, padTo: 3 }).inputIds).toEqual(Int32Array.from([5, 6, 9]));
    expect(() => collate([], { padId: 0 })).toThrow(/empty/);
    expect(() => collate([ex], { padId: 0, padTo: 1 })).toThrow(/shorter than the longest/);
    expect(() => collate([{ ...ex, promptLength: 3 }], { padId: 0 })).toThrow(/examples\[0\]\.promptLength/);
  });
});
