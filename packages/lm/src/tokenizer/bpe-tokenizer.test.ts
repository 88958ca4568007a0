import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getEncoding, type Tiktoken } from 'js-tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpeTokenizer } from './bpe-tokenizer.js';
import { bytesToUnicode } from './byte-unicode.js';
import { gpt2HfDir, randomUnicodeString, realCorpus, seededRandom, TRICKY_STRINGS } from './test-helpers.js';

const EOT = '<|endoftext|>';

describe('BpeTokenizer with the GPT-2 files', () => {
  let dir: string;
  let tok: BpeTokenizer;
  let ref: Tiktoken;
  let corpus: string[];

  /** js-tiktoken with special-token strings treated as plain text (our default). */
  const refEncode = (s: string): number[] => ref.encode(s, [], []);

  beforeAll(async () => {
    dir = await gpt2HfDir();
    tok = await BpeTokenizer.fromDirectory(dir);
    ref = getEncoding('gpt2');
    corpus = await realCorpus();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the 50,257-token vocabulary with <|endoftext|> (50256) in every role', () => {
    expect(tok.vocabSize).toBe(50257);
    expect(tok.eosId).toBe(50256);
    expect(tok.padId).toBe(50256);
    expect(tok.bosId).toBe(50256);
    expect(tok.merges).toHaveLength(50000);
    expect(tok.tokenToId('Ġthe')).toBe(262);
    expect(tok.idToToken(262)).toBe('Ġthe');
    expect(tok.idToToken(50257)).toBeUndefined();
    expect(tok.idToToken(1.5)).toBeUndefined();
  });

  it('gives the ids of js-tiktoken gpt2 on a real corpus (>= 100 KB), per document and all at once', () => {
    const all = corpus.join('\n');
    expect(Buffer.byteLength(all)).toBeGreaterThanOrEqual(100_000);
    const ids = tok.encode(all);
    expect(ids).toEqual(refEncode(all));
    expect(ids.length).toBeLessThan(Buffer.byteLength(all) / 3); // real BPE compresses English ~4x
    let mismatches = 0;
    for (const doc of corpus)
      if (JSON.stringify(tok.encode(doc)) !== JSON.stringify(refEncode(doc))) mismatches++;
    expect(mismatches).toBe(0);
    expect(tok.decode(ids)).toBe(all);
  });

  it('matches js-tiktoken on tricky strings and round-trips them', () => {
    for (const s of TRICKY_STRINGS) {
      expect(tok.encode(s), JSON.stringify(s)).toEqual(refEncode(s));
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
    expect(tok.encode('Hello world')).toEqual([15496, 995]); // GPT-2's well-known ids
  });

  it('matches js-tiktoken and round-trips seeded random Unicode (controls, CJK, emoji, ZWJ, astral)', () => {
    const rand = seededRandom(2024);
    for (let i = 0; i < 1500; i++) {
      const s = randomUnicodeString(rand, 40);
      const ids = tok.encode(s);
      expect(ids, JSON.stringify(s)).toEqual(refEncode(s));
      expect(tok.decode(ids)).toBe(s);
    }
  });

  it('handles long single pieces (no quadratic blow-up) and keeps ids right', () => {
    const s = 'a'.repeat(20_000) + ' '.repeat(5_000) + 'z' + '😀'.repeat(2_000);
    const t0 = performance.now();
    const ids = tok.encode(s);
    expect(performance.now() - t0).toBeLessThan(5_000); // js-tiktoken takes tens of seconds here
    expect(tok.decode(ids)).toBe(s);
    const short = 'b'.repeat(400) + ' '.repeat(300) + 'xy' + '中'.repeat(200);
    expect(tok.encode(short)).toEqual(refEncode(short));
  });

  it('encodes lone surrogates as U+FFFD, like js-tiktoken (they are not valid text, so no round trip)', () => {
    expect(tok.encode('a\ud800b')).toEqual(refEncode('a\ud800b'));
    expect(tok.encode('a\ud800b')).toEqual(tok.encode('a\ufffdb'));
  });

  it('treats special-token strings as text unless allowSpecial', () => {
    const s = `Hi${EOT}there ${EOT}`;
    const plain = tok.encode(s);
    expect(plain).toEqual(refEncode(s));
    expect(plain).not.toContain(50256);
    const special = tok.encode(s, { allowSpecial: true });
    expect(special).toEqual(ref.encode(s, 'all'));
    expect(special).toEqual([...tok.encode('Hi'), 50256, ...tok.encode('there '), 50256]);
    expect(tok.encode(EOT, { allowSpecial: true })).toEqual([50256]);
    expect(tok.decode(special)).toBe(s);
    expect(tok.decode(special, { skipSpecial: true })).toBe('Hithere ');
    expect(tok.isSpecialId(50256)).toBe(true);
    expect(tok.isSpecialId(262)).toBe(false);
  });

  it('encodeBatch equals encode of each text', () => {
    const texts = corpus.slice(0, 50);
    expect(tok.encodeBatch(texts)).toEqual(texts.map((t) => tok.encode(t)));
    expect(tok.encodeBatch([])).toEqual([]);
  });

  it('decodes invalid UTF-8 (a character cut between tokens) to U+FFFD like errors="replace"', () => {
    const sym = bytesToUnicode();
    const byteId = (b: number): number => tok.tokenToId(sym[b]!)!;
    expect(tok.decode([byteId(0xff)])).toBe('\ufffd');
    // F0 9F is the start of a 4-byte character: one replacement for the truncated sequence
    expect(tok.decode([byteId(0xf0), byteId(0x9f), tok.tokenToId('a')!])).toBe('\ufffda');
    expect(tok.decode([tok.tokenToId('a')!, byteId(0x80)])).toBe('a\ufffd');
    const emoji = tok.encode('😀');
    expect(emoji.length).toBeGreaterThan(1);
    expect(tok.decode(emoji.slice(0, 1))).toBe('\ufffd');
    // a leading BOM is content, not stripped
    expect(tok.decode(tok.encode('\ufeffx'))).toBe('\ufeffx');
    // typed arrays are accepted
    expect(tok.decode(Int32Array.from(tok.encode('typed')))).toBe('typed');
  });

  it('rejects ids outside the vocabulary, naming the index', () => {
    expect(() => tok.decode([1, 50257])).toThrow(/ids\[1\] = 50257 is not a token id.*vocabSize 50257/);
    expect(() => tok.decode([-1])).toThrow(/ids\[0\] = -1/);
    expect(() => tok.decode([0.5])).toThrow(/ids\[0\] = 0.5/);
    expect(() => tok.encode(42 as unknown as string)).toThrow(/text must be a string/);
  });

  it('reads special_tokens_map.json in Hugging Face form (string or {content}); pad defaults to eos', async () => {
    const d2 = await gpt2HfDir();
    try {
      await writeFile(
        join(d2, 'special_tokens_map.json'),
        JSON.stringify({ eos_token: { content: EOT, lstrip: false }, unk_token: EOT }),
      );
      const t2 = await BpeTokenizer.fromDirectory(d2);
      expect(t2.eosId).toBe(50256);
      expect(t2.padId).toBe(50256);
      expect(t2.bosId).toBeUndefined();
      await writeFile(
        join(d2, 'special_tokens_map.json'),
        JSON.stringify({ eos_token: EOT, pad_token: '!' }),
      );
      const t3 = await BpeTokenizer.fromDirectory(d2);
      expect(t3.padId).toBe(0);
      expect(t3.eosId).toBe(50256);
      await writeFile(join(d2, 'special_tokens_map.json'), JSON.stringify({ eos_token: '<|nope|>' }));
      await expect(BpeTokenizer.fromDirectory(d2)).rejects.toThrow(
        /special_tokens_map\.json: eos token "<\|nope\|>" is not in .*vocab\.json/,
      );
    } finally {
      await rm(d2, { recursive: true, force: true });
    }
  });

  it('save then fromDirectory gives byte-identical files and identical ids', async () => {
    const out = await mkdtemp(join(tmpdir(), 'relign-gpt2-save-'));
    try {
      await tok.save(out);
      const merges = await readFile(join(out, 'merges.txt'), 'utf8');
      expect(merges).toBe(await readFile(join(dir, 'merges.txt'), 'utf8')); // same as GPT-2's vocab.bpe
      expect(JSON.parse(await readFile(join(out, 'vocab.json'), 'utf8'))).toEqual(
        JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')),
      );
      const back = await BpeTokenizer.fromDirectory(out);
      const sample = corpus.slice(0, 200).join('\n');
      expect(back.encode(sample)).toEqual(tok.encode(sample));
      expect([back.eosId, back.padId, back.bosId]).toEqual([50256, 50256, 50256]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

describe('BpeTokenizer construction errors', () => {
  const sym = bytesToUnicode();
  const base = (): Record<string, number> => {
    const v: Record<string, number> = {};
    sym.forEach((s, i) => (v[s] = i));
    return v;
  };

  it('names the missing file and its path', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'relign-empty-'));
    try {
      await expect(BpeTokenizer.fromDirectory(empty)).rejects.toThrow(
        `missing vocab.json at ${join(empty, 'vocab.json')}`,
      );
      await writeFile(join(empty, 'vocab.json'), JSON.stringify({ ...base(), [EOT]: 256 }));
      await expect(BpeTokenizer.fromDirectory(empty)).rejects.toThrow(
        `missing merges.txt at ${join(empty, 'merges.txt')}`,
      );
      await writeFile(join(empty, 'merges.txt'), '#version: 0.2\nĠ a\nbad-line\n');
      await expect(BpeTokenizer.fromDirectory(empty)).rejects.toThrow(
        /merges\.txt line 3: expected two tokens separated by one space.*"bad-line"/,
      );
      await writeFile(join(empty, 'vocab.json'), '{"a": 1,');
      await expect(BpeTokenizer.fromDirectory(empty)).rejects.toThrow(/vocab\.json: not valid JSON/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('names the line of a malformed merge (text or pair input)', () => {
    const v = { ...base(), [EOT]: 256 };
    expect(() => BpeTokenizer.fromVocabAndMerges(v, '#version: 0.2\na b c\n')).toThrow(
      /merges\.txt line 2:.*"a b c"/,
    );
    expect(() => BpeTokenizer.fromVocabAndMerges(v, 'a  b')).toThrow(/merges\.txt line 1/);
    expect(() => BpeTokenizer.fromVocabAndMerges(v, [['a'] as unknown as [string, string]])).toThrow(
      /merges\[0\]: expected a pair/,
    );
  });

  it('reports vocab/merge inconsistency: a merge whose result or part is not in the vocab, or a repeat', () => {
    const v = { ...base(), ab: 256, [EOT]: 257 };
    expect(() => BpeTokenizer.fromVocabAndMerges(v, '#version: 0.2\na b\nc d\n')).toThrow(
      /merges\.txt line 3: merge "c d" needs token "cd", which is not in vocab/,
    );
    expect(() =>
      BpeTokenizer.fromVocabAndMerges(v, [
        ['a', 'b'],
        ['a', 'zz'],
      ]),
    ).toThrow(/merges\[1\].*needs token "zz"/);
    expect(() =>
      BpeTokenizer.fromVocabAndMerges(v, [
        ['a', 'b'],
        ['a', 'b'],
      ]),
    ).toThrow(/merges\[1\].*repeats merges\[0\]/);
  });

  it('rejects bad ids, missing byte symbols and unknown specials', () => {
    expect(() => BpeTokenizer.fromVocabAndMerges({ ...base(), x: 1.5 }, '')).toThrow(
      /id of token "x" must be an integer/,
    );
    expect(() => BpeTokenizer.fromVocabAndMerges({ ...base(), xy: 3 }, '')).toThrow(/share id 3/);
    const noSpace = base();
    delete noSpace['Ġ'];
    noSpace[EOT] = 300;
    expect(() => BpeTokenizer.fromVocabAndMerges(noSpace, '')).toThrow(
      /missing the byte-level symbol "Ġ" for byte 0x20/,
    );
    expect(() => BpeTokenizer.fromVocabAndMerges(base(), '')).toThrow(
      /no special tokens given.*has no <\|endoftext\|>/,
    );
    expect(() => BpeTokenizer.fromVocabAndMerges(base(), '', { eos: '<eos>' })).toThrow(
      /eos token "<eos>" is not in vocab/,
    );
  });

  it('accepts explicit specials: pad may equal eos or differ; bos optional', () => {
    const v = { ...base(), '<eos>': 256, '<pad>': 257 };
    const same = BpeTokenizer.fromVocabAndMerges(v, '', { eos: '<eos>' });
    expect([same.eosId, same.padId, same.bosId]).toEqual([256, 256, undefined]);
    const diff = BpeTokenizer.fromVocabAndMerges(v, '', { eos: '<eos>', pad: '<pad>', bos: '<eos>' });
    expect([diff.eosId, diff.padId, diff.bosId]).toEqual([256, 257, 256]);
    // base() gives byte symbol b the id b, so 'a' is 97 and 'x' is 120
    expect(diff.decode([97, 257, 256], { skipSpecial: true })).toBe('a');
    expect(diff.decode([97, 257, 256])).toBe('a<pad><eos>');
    expect(diff.encode('<pad>x<eos>', { allowSpecial: true })).toEqual([257, 120, 256]);
    expect(diff.encode('<pad>')).toEqual([60, 112, 97, 100, 62]);
  });
});
