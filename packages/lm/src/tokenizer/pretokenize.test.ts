import { describe, expect, it } from 'vitest';
import { GPT2_PRETOKENIZE_PATTERN, pretokenize } from './pretokenize.js';
import { randomUnicodeString, seededRandom } from './test-helpers.js';

describe('GPT2_PRETOKENIZE_PATTERN', () => {
  it("is GPT-2's pattern with the u and g flags", () => {
    expect(GPT2_PRETOKENIZE_PATTERN.source).toBe(
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    );
    expect(GPT2_PRETOKENIZE_PATTERN.flags).toBe('gu');
  });

  it('splits words, contractions, numbers, punctuation and whitespace as GPT-2 does', () => {
    expect(pretokenize('Hello world!')).toEqual(['Hello', ' world', '!']);
    expect(pretokenize("I'm they'll")).toEqual(['I', "'m", ' they', "'ll"]);
    expect(pretokenize('abc123 45')).toEqual(['abc', '123', ' 45']);
    // the last space of a run starts the next word
    expect(pretokenize('a   b')).toEqual(['a', '  ', ' b']);
    expect(pretokenize('end  ')).toEqual(['end', '  ']);
    // a whitespace run before a word gives up its last character, which then stands alone
    expect(pretokenize('x\n\ny')).toEqual(['x', '\n', '\n', 'y']);
    expect(pretokenize('x \ny')).toEqual(['x', ' ', '\n', 'y']);
    expect(pretokenize('x\n\n')).toEqual(['x', '\n\n']);
    expect(pretokenize('?! ...')).toEqual(['?!', ' ...']);
    expect(pretokenize('')).toEqual([]);
  });

  it('pieces always concatenate back to the input', () => {
    const rand = seededRandom(3);
    for (let i = 0; i < 300; i++) {
      const s = randomUnicodeString(rand, 40);
      expect(pretokenize(s).join('')).toBe(s);
    }
  });
});
