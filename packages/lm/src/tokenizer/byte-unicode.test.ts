import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesToUnicode, unicodeToBytes } from './byte-unicode.js';
import { gpt2FilesDir } from './test-helpers.js';

describe('bytesToUnicode', () => {
  it('is a bijection from 256 bytes to 256 distinct single characters, inverted by unicodeToBytes', () => {
    const map = bytesToUnicode();
    expect(map).toHaveLength(256);
    expect(new Set(map).size).toBe(256);
    const inv = unicodeToBytes();
    map.forEach((ch, byte) => {
      expect(ch).toHaveLength(1);
      expect(inv.get(ch.charCodeAt(0))).toBe(byte);
    });
  });

  it('maps printable bytes to themselves and the 68 others to U+0100.. in byte order (GPT-2 encoder.py)', () => {
    const map = bytesToUnicode();
    expect(map[0x21]).toBe('!');
    expect(map[0x41]).toBe('A');
    expect(map[0x7e]).toBe('~');
    expect(map[0xe9]).toBe('é');
    expect(map[0x00]).toBe('\u0100'); // first non-printable
    expect(map[0x0a]).toBe('Ċ'); // newline: U+0100 + 10
    expect(map[0x20]).toBe('Ġ'); // space: U+0100 + 32
    expect(map[0x7f]).toBe('\u0121'); // DEL: 34th non-printable (0..32 are 33)
    expect(map[0xa0]).toBe('\u0142'); // NBSP: 0..32, 127..160 -> 33 + 34 - 1
    expect(map[0xad]).toBe('Ń'); // soft hyphen: the 68th, U+0143
    // every symbol is visible (no whitespace or control character)
    for (const ch of map) expect(/[\s\p{C}]/u.test(ch)).toBe(false);
  });

  it('returns a copy (callers cannot corrupt the table)', () => {
    const a = bytesToUnicode();
    a[0] = 'x';
    expect(bytesToUnicode()[0]).toBe('\u0100');
  });

  it("its 256 symbols are GPT-2 vocab.json's ids 0..255, in code-point order", async () => {
    const vocab = JSON.parse(await readFile(join(gpt2FilesDir(), 'encoder.json'), 'utf8')) as Record<
      string,
      number
    >;
    const sorted = bytesToUnicode().sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
    sorted.forEach((sym, i) => expect(vocab[sym]).toBe(i));
  });
});
