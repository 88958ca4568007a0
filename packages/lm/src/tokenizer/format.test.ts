import { describe, expect, it } from 'vitest';
import {
  MERGES_HEADER,
  parseMerges,
  parseMergesWithLines,
  parseSpecialTokensMap,
  parseVocab,
  serializeMerges,
  serializeSpecialTokensMap,
  serializeVocab,
} from './format.js';

describe('tokenizer file formats', () => {
  it('parses merges.txt: header, CRLF and trailing newline, with line numbers', () => {
    const r = parseMergesWithLines('#version: 0.2\r\nĠ t\r\nh e\n\n');
    expect(r.merges).toEqual([
      ['Ġ', 't'],
      ['h', 'e'],
    ]);
    expect(r.lines).toEqual([2, 3]);
    expect(parseMerges('a b')).toEqual([['a', 'b']]);
    expect(parseMerges('')).toEqual([]);
  });

  it('rejects malformed merge lines with their 1-based number and the file name', () => {
    expect(() => parseMerges('a b\nab\n', 'dir/merges.txt')).toThrow(/^dir\/merges\.txt line 2: .*"ab"/);
    expect(() => parseMerges('a b\n a\n')).toThrow(/line 2/);
    // a header only counts on line 1; later it is an ordinary (odd) merge
    expect(parseMerges('x y\n#version: 0.2\n')).toEqual([
      ['x', 'y'],
      ['#version:', '0.2'],
    ]);
  });

  it('serializeMerges writes the header and parses back', () => {
    const m: [string, string][] = [
      ['Ġ', 't'],
      ['Ġt', 'he'],
    ];
    const text = serializeMerges(m);
    expect(text).toBe(`${MERGES_HEADER}\nĠ t\nĠt he\n`);
    expect(parseMerges(text)).toEqual(m);
  });

  it('serializeVocab keeps id order, integer-like and __proto__ tokens, and parses back', () => {
    const tokens = ['b', '10', '__proto__', '"q"', undefined, '2'];
    const text = serializeVocab(tokens);
    const back = parseVocab(text);
    expect(Object.entries(back).sort((x, y) => x[1] - y[1])).toEqual([
      ['b', 0],
      ['10', 1],
      ['__proto__', 2],
      ['"q"', 3],
      ['2', 5],
    ]);
    expect(text.indexOf('"b"')).toBeLessThan(text.indexOf('"10"'));
  });

  it('parseVocab rejects non-objects, naming the source', () => {
    expect(() => parseVocab('[1]', 'v.json')).toThrow(/^v\.json: expected a JSON object/);
    expect(() => parseVocab('{', 'v.json')).toThrow(/^v\.json: not valid JSON/);
  });

  it('reads special_tokens_map.json values as strings or {content} objects', () => {
    const m = parseSpecialTokensMap(
      JSON.stringify({
        bos_token: '<s>',
        eos_token: { content: '</s>', lstrip: false },
        pad_token: null,
        unk_token: '<unk>',
        additional_special_tokens: ['<a>', { content: '<b>' }],
      }),
    );
    expect(m).toEqual({ bos: '<s>', eos: '</s>', additional: ['<a>', '<b>'] });
    expect(() => parseSpecialTokensMap('{"eos_token": 3}', 'm.json')).toThrow(
      /m\.json: "eos_token" must be a string/,
    );
    expect(() => parseSpecialTokensMap('{"additional_special_tokens": "x"}')).toThrow(/must be an array/);
    expect(
      parseSpecialTokensMap(serializeSpecialTokensMap({ eos: 'e', pad: 'p', additional: ['x'] })),
    ).toEqual({
      eos: 'e',
      pad: 'p',
      additional: ['x'],
    });
  });
});
