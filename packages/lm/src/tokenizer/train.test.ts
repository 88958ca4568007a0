import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpeTokenizer } from './bpe-tokenizer.js';
import { bytesToUnicode } from './byte-unicode.js';
import { randomUnicodeString, realCorpus, seededRandom, TRICKY_STRINGS } from './test-helpers.js';
import { trainBpe } from './train.js';

const EOT = '<|endoftext|>';

describe('trainBpe on a tiny hand-worked corpus', () => {
  // Words: "ab" x1, " ab" x2, " cd" x2. Pair counts: (a,b)=3, (Ġ,a)=(Ġ,c)=(c,d)=2.
  // 1st merge: "a b" (3). Then (Ġ,ab)=(Ġ,c)=(c,d)=2: the tie goes to the smallest (left id, right id);
  // ids are code-point order, so c=66 < Ġ=220: "c d". Then "Ġ ab" (ab=256 < cd=257), then "Ġ cd".
  const texts = ['ab ab ab cd cd'];

  it('learns the merges in the expected order and puts specials last', () => {
    const tok = trainBpe(texts, { vocabSize: 261 });
    expect(tok.merges).toEqual([
      ['a', 'b'],
      ['c', 'd'],
      ['Ġ', 'ab'],
      ['Ġ', 'cd'],
    ]);
    expect([tok.tokenToId('ab'), tok.tokenToId('cd'), tok.tokenToId('Ġab'), tok.tokenToId('Ġcd')]).toEqual([
      256, 257, 258, 259,
    ]);
    expect(tok.tokenToId('Ġ')).toBe(220); // same byte-symbol ids as GPT-2
    expect(tok.eosId).toBe(260);
    expect(tok.encode('ab cd ab')).toEqual([256, 259, 258]);
    expect(tok.encode('abcd')).toEqual([256, 257]);
  });

  it('stops at exactly vocabSize, and explains when the corpus cannot reach it', () => {
    expect(trainBpe(texts, { vocabSize: 259 }).merges).toHaveLength(2);
    expect(() => trainBpe(texts, { vocabSize: 262 })).toThrow(
      /supports only 4 merges occurring at least minFrequency=2 times.*vocabSize 262 cannot be reached \(max 261\)/,
    );
    // minFrequency 1 admits pairs seen once: none here (every remaining word is a single token)
    expect(() => trainBpe(texts, { vocabSize: 262, minFrequency: 1 })).toThrow(/supports only 4 merges/);
    expect(trainBpe(['ab cd'], { vocabSize: 260, minFrequency: 1 }).merges).toEqual([
      ['a', 'b'],
      ['c', 'd'],
      ['Ġ', 'cd'],
    ]);
    expect(() => trainBpe(texts, { vocabSize: 261, minFrequency: 3 })).toThrow(/supports only 1 merges/);
  });
});

describe('trainBpe on real text', () => {
  let corpus: string[];
  let tok: BpeTokenizer;
  let dir: string;

  beforeAll(async () => {
    corpus = await realCorpus();
    tok = trainBpe(corpus, { vocabSize: 1000 });
    dir = await mkdtemp(join(tmpdir(), 'relign-bpe-train-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has exactly vocabSize tokens: 256 bytes, merges, then the special token', () => {
    expect(tok.vocabSize).toBe(1000);
    expect(tok.merges).toHaveLength(1000 - 256 - 1);
    expect(tok.eosId).toBe(999);
    expect(tok.padId).toBe(999); // pad = eos by default: both exposed, same id
    expect(tok.bosId).toBeUndefined();
    expect(tok.idToToken(999)).toBe(EOT);
    const sorted = bytesToUnicode().sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
    sorted.forEach((s, i) => expect(tok.tokenToId(s)).toBe(i));
    for (const size of [257, 300, 513])
      expect(trainBpe(corpus.slice(0, 500), { vocabSize: size }).vocabSize).toBe(size);
  });

  it('is deterministic (same merges from an array or a generator, or a second run)', () => {
    const again = trainBpe(
      (function* () {
        yield* corpus;
      })(),
      { vocabSize: 1000 },
    );
    expect(again.merges).toEqual(tok.merges);
    // order of documents does not change word counts, so not the merges either
    expect(trainBpe(corpus.slice().reverse(), { vocabSize: 1000 }).merges).toEqual(tok.merges);
  });

  it('compresses its training text and round-trips it', () => {
    const text = corpus.join('\n');
    const ids = tok.encode(text);
    expect(ids.length).toBeLessThan(Buffer.byteLength(text) * 0.6);
    expect(tok.decode(ids)).toBe(text);
  });

  it('encodes like the GPT-2 reference loop (every merge of the lowest rank, repeatedly)', () => {
    const ranks = new Map(tok.merges.map(([a, b], r) => [`${a} ${b}`, r]));
    const sym = bytesToUnicode();
    const enc = new TextEncoder();
    const rand = seededRandom(5);
    const words = corpus.join(' ').split(' ');
    for (let i = 0; i < 300; i++) {
      const w = ' ' + words[Math.floor(rand() * words.length)]!.replace(/[^a-zA-Z]/g, '');
      let word = Array.from(enc.encode(w), (b) => sym[b]!);
      for (;;) {
        let best = -1;
        let rank = Infinity;
        for (let j = 0; j + 1 < word.length; j++) {
          const r = ranks.get(`${word[j]} ${word[j + 1]}`);
          if (r !== undefined && r < rank) [rank, best] = [r, j];
        }
        if (best < 0) break;
        const [a, b] = [word[best]!, word[best + 1]!];
        const out: string[] = [];
        for (let j = 0; j < word.length; j++) {
          if (word[j] === a && word[j + 1] === b) {
            out.push(a + b);
            j++;
          } else out.push(word[j]!);
        }
        word = out;
      }
      expect(tok.encode(w)).toEqual(word.map((t) => tok.tokenToId(t)!));
    }
  });

  it('round-trips arbitrary Unicode with the trained vocab', () => {
    const rand = seededRandom(99);
    for (let i = 0; i < 1500; i++) {
      const s = randomUnicodeString(rand, 40);
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
    for (const s of TRICKY_STRINGS) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('save + fromDirectory: GPT-2 file format, identical ids and specials', async () => {
    await tok.save(dir);
    const merges = await readFile(join(dir, 'merges.txt'), 'utf8');
    expect(merges.split('\n')[0]).toBe('#version: 0.2');
    expect(merges.split('\n')).toHaveLength(1 + 743 + 1);
    const vocab = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
    expect(Object.keys(vocab)).toHaveLength(1000);
    expect(JSON.parse(await readFile(join(dir, 'special_tokens_map.json'), 'utf8'))).toEqual({
      eos_token: EOT,
      pad_token: EOT,
    });
    const back = await BpeTokenizer.fromDirectory(dir);
    expect(back.merges).toEqual(tok.merges);
    expect([back.vocabSize, back.eosId, back.padId, back.bosId]).toEqual([1000, 999, 999, undefined]);
    const text = corpus.slice(0, 300).join('\n') + TRICKY_STRINGS.join('\n');
    expect(back.encode(text)).toEqual(tok.encode(text));
    expect(back.encode(`a${EOT}b`, { allowSpecial: true })).toEqual(
      tok.encode(`a${EOT}b`, { allowSpecial: true }),
    );
  });
});

describe('trainBpe special tokens', () => {
  const texts = Array.from({ length: 40 }, (_, i) => `review ${i}: good food${EOT}bad service<|pad|>`);

  it('never merges across or inside special-token strings in the training text', () => {
    const tok = trainBpe(texts, { vocabSize: 273, specialTokens: [EOT, '<|pad|>'] });
    for (const [a, b] of tok.merges) expect(a + b).not.toMatch(/<\||\|>|endof|pad\|/);
  });

  it('several specials: ids at the end in order; roles explicit; pad distinct from eos', async () => {
    const tok = trainBpe(texts, {
      vocabSize: 274,
      specialTokens: [EOT, '<|pad|>', '<|bos|>'],
      roles: { pad: '<|pad|>', bos: '<|bos|>' },
    });
    expect([tok.eosId, tok.padId, tok.bosId]).toEqual([271, 272, 273]);
    expect(tok.allSpecialTokens).toEqual([EOT, '<|pad|>', '<|bos|>']);
    const s = `<|bos|>hi${EOT}<|pad|><|pad|>`;
    const ids = tok.encode(s, { allowSpecial: true });
    expect(ids).toEqual([273, ...tok.encode('hi'), 271, 272, 272]);
    expect(tok.encode(s)).not.toContain(271); // plain text unless allowSpecial
    expect(tok.decode(tok.encode(s))).toBe(s);
    expect(tok.decode(ids)).toBe(s);
    expect(tok.decode(ids, { skipSpecial: true })).toBe('hi');
    const dir = await mkdtemp(join(tmpdir(), 'relign-bpe-specials-'));
    try {
      await tok.save(dir);
      const back = await BpeTokenizer.fromDirectory(dir);
      expect([back.eosId, back.padId, back.bosId]).toEqual([271, 272, 273]);
      expect(back.encode(s, { allowSpecial: true })).toEqual(ids);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an extra special that is not a role is still atomic under allowSpecial', () => {
    const tok = trainBpe(texts, { vocabSize: 273, specialTokens: [EOT, '<|user|>'] });
    expect(tok.allSpecialTokens).toEqual([EOT, '<|user|>']);
    expect(tok.encode('<|user|>', { allowSpecial: true })).toEqual([272]);
    expect(tok.encode('<|user|>')).not.toContain(272);
    expect(tok.eosId).toBe(271);
    expect(tok.padId).toBe(271);
  });

  it('rejects bad inputs with clear messages', () => {
    expect(() => trainBpe(texts, { vocabSize: 256 })).toThrow(
      /vocabSize must be an integer >= 257 .*got 256/,
    );
    expect(() => trainBpe(texts, { vocabSize: 257.5 })).toThrow(/vocabSize must be an integer/);
    expect(() => trainBpe(texts, { vocabSize: 258, specialTokens: ['<a>', '<b>', '<c>'] })).toThrow(/>= 259/);
    expect(() => trainBpe(texts, { vocabSize: 300, specialTokens: [] })).toThrow(
      /specialTokens must be a non-empty/,
    );
    expect(() => trainBpe(texts, { vocabSize: 300, specialTokens: ['x', 'x'] })).toThrow(
      /collides with a byte-level/,
    );
    expect(() => trainBpe(texts, { vocabSize: 300, specialTokens: ['<a>', '<a>'] })).toThrow(/is repeated/);
    expect(() => trainBpe(texts, { vocabSize: 300, roles: { pad: '<pad>' } })).toThrow(
      /roles\.pad "<pad>" is not in specialTokens/,
    );
    expect(() => trainBpe(texts, { vocabSize: 300, minFrequency: 0 })).toThrow(
      /minFrequency must be an integer >= 1/,
    );
    expect(() => trainBpe(['ok', 3 as unknown as string], { vocabSize: 257 })).toThrow(
      /texts\[1\] must be a string/,
    );
    expect(() => trainBpe(texts, undefined as unknown as { vocabSize: number })).toThrow(
      /options \{ vocabSize \}/,
    );
  });
});
