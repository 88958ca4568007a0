import { describe, expect, it } from 'vitest';
import { randomUnicodeString, seededRandom } from './test-helpers.js';
import { encodeUtf8Into, maxUtf8Length } from './utf8.js';

function ours(s: string): number[] {
  const buf = new Uint8Array(maxUtf8Length(s));
  return Array.from(buf.subarray(0, encodeUtf8Into(s, buf)));
}

describe('encodeUtf8Into', () => {
  it('encodes 1-, 2-, 3- and 4-byte characters (hand-computed)', () => {
    expect(ours('A')).toEqual([0x41]);
    expect(ours('é')).toEqual([0xc3, 0xa9]);
    expect(ours('中')).toEqual([0xe4, 0xb8, 0xad]);
    expect(ours('😀')).toEqual([0xf0, 0x9f, 0x98, 0x80]);
  });

  it('replaces lone surrogates with U+FFFD like TextEncoder', () => {
    expect(ours('\ud800')).toEqual([0xef, 0xbf, 0xbd]);
    expect(ours('a\udc00b')).toEqual([0x61, 0xef, 0xbf, 0xbd, 0x62]);
    expect(ours('\ud83d\ud83d\ude00')).toEqual([0xef, 0xbf, 0xbd, 0xf0, 0x9f, 0x98, 0x80]);
  });

  it('equals TextEncoder on seeded random strings, including unpaired surrogate halves', () => {
    const rand = seededRandom(7);
    const enc = new TextEncoder();
    for (let i = 0; i < 500; i++) {
      let s = randomUnicodeString(rand, 30);
      if (rand() < 0.3) s += String.fromCharCode(0xd800 + Math.floor(rand() * 0x800));
      expect(ours(s)).toEqual(Array.from(enc.encode(s)));
    }
  });
});
