import { describe, expect, it } from 'vitest';
import { tokenizePromptCompletion, type TextTokenizer } from './tokenize.js';

/** One id per character: a..z -> 1..26, space -> 27; EOS = PAD = 0 (GPT-2 style: pad == eos). */
const charTok: TextTokenizer = {
  encode: (s) => [...s].map((c) => (c === ' ' ? 27 : c.charCodeAt(0) - 96)),
  eosId: 0,
  padId: 0,
  bosId: 28,
};

describe('tokenizePromptCompletion', () => {
  it('appends EOS to the completion and records the prompt length', () => {
    const r = tokenizePromptCompletion([{ prompt: 'ab', completion: 'c' }], charTok, { maxLength: 8 });
    expect(r.examples).toHaveLength(1);
    expect(Array.from(r.examples[0]!.ids)).toEqual([1, 2, 3, 0]);
    expect(r.examples[0]!.promptLength).toBe(2);
    expect(r.examples[0]!.length).toBe(4);
  });

  it('cuts the prompt from the left, keeps BOS first, and counts it', () => {
    const r = tokenizePromptCompletion([{ prompt: 'abcdef', completion: 'xy' }], charTok, {
      maxLength: 6,
      addBos: true,
    });
    // room = 6: BOS + prompt + x y EOS -> prompt keeps its last 2 characters (e f).
    expect(Array.from(r.examples[0]!.ids)).toEqual([28, 5, 6, 24, 25, 0]);
    expect(r.examples[0]!.promptLength).toBe(3);
    expect(r.promptTruncated).toBe(1);
  });

  it('drops (default) or truncates without EOS a completion that cannot fit', () => {
    const data = [
      { prompt: 'a', completion: 'bcdef' },
      { prompt: 'a', completion: 'b' },
    ];
    const dropped = tokenizePromptCompletion(data, charTok, { maxLength: 4 });
    expect(dropped.dropped).toBe(1);
    expect(dropped.kept).toEqual([1]);
    const cut = tokenizePromptCompletion(data, charTok, { maxLength: 4, overflow: 'truncate' });
    expect(Array.from(cut.examples[0]!.ids)).toEqual([2, 3, 4, 5]); // no prompt, no EOS
    expect(cut.examples[0]!.promptLength).toBe(0);
    expect(cut.completionTruncated).toBe(1);
    expect(cut.dropped).toBe(0);
  });

  it('rejects a bad maxLength or a missing BOS', () => {
    expect(() => tokenizePromptCompletion([], charTok, { maxLength: 1 })).toThrow(
      /maxLength must be an integer >= 2/,
    );
    expect(() =>
      tokenizePromptCompletion([], { ...charTok, bosId: undefined }, { maxLength: 4, addBos: true }),
    ).toThrow(/no bosId/);
  });
});
