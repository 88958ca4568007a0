import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BpeWordMerger, HEAP_THRESHOLD } from './bpe-word.js';
import { bytesToUnicode } from './byte-unicode.js';
import { parseMerges } from './format.js';
import { MergeTable } from './merge-table.js';
import { gpt2FilesDir, realCorpus, seededRandom } from './test-helpers.js';

describe('MergeTable', () => {
  it('stores ranks in insertion order, reports repeats, and survives growth', () => {
    const t = new MergeTable(1);
    for (let i = 0; i < 1000; i++) expect(t.add(i, i + 1, 5000 + i)).toBe(-1);
    expect(t.size).toBe(1000);
    for (let i = 0; i < 1000; i++) {
      expect(t.rank(i, i + 1)).toBe(i);
      expect(t.merged(i)).toBe(5000 + i);
      expect(t.rank(i + 1, i)).toBe(-1);
    }
    expect(t.add(10, 11, 1)).toBe(10); // repeat: earlier rank, nothing added
    expect(t.size).toBe(1000);
  });
});

/**
 * GPT-2's reference loop (openai/gpt-2 encoder.py `bpe`), written over token strings: take the pair with
 * the lowest rank, merge every occurrence left to right, repeat.
 */
function referenceBpe(symbols: string[], ranks: Map<string, number>): string[] {
  let word = symbols.slice();
  for (;;) {
    let best: [string, string] | undefined;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < word.length; i++) {
      const r = ranks.get(`${word[i]} ${word[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = [word[i]!, word[i + 1]!];
      }
    }
    if (best === undefined) return word;
    const out: string[] = [];
    for (let i = 0; i < word.length; i++) {
      if (i + 1 < word.length && word[i] === best[0] && word[i + 1] === best[1]) {
        out.push(best[0] + best[1]);
        i++;
      } else out.push(word[i]!);
    }
    word = out;
  }
}

describe('BpeWordMerger (GPT-2 merges)', () => {
  let vocab: Record<string, number>;
  let tokens: string[];
  let ranks: Map<string, number>;
  let merger: BpeWordMerger;
  let words: string[];
  const byteSym = bytesToUnicode();
  const enc = new TextEncoder();

  beforeAll(async () => {
    const dir = gpt2FilesDir();
    vocab = JSON.parse(await readFile(join(dir, 'encoder.json'), 'utf8')) as Record<string, number>;
    tokens = [];
    for (const [t, id] of Object.entries(vocab)) tokens[id] = t;
    const merges = parseMerges(await readFile(join(dir, 'vocab.bpe'), 'utf8'));
    ranks = new Map(merges.map(([a, b], r) => [`${a} ${b}`, r]));
    const table = new MergeTable(merges.length);
    for (const [a, b] of merges) table.add(vocab[a]!, vocab[b]!, vocab[a + b]!);
    merger = new BpeWordMerger(table);
    words = (await realCorpus())
      .join(' ')
      .split(/\s+/)
      .filter((w) => w.length > 0);
  });

  function symbolsOf(text: string): string[] {
    return Array.from(enc.encode(text), (b) => byteSym[b]!);
  }

  function run(text: string, method: 'merge' | 'mergeScan' | 'mergeHeap'): string[] {
    const ids = Int32Array.from(symbolsOf(text), (s) => vocab[s]!);
    const n = merger[method](ids, ids.length);
    return Array.from(ids.subarray(0, n), (id) => tokens[id]!);
  }

  it('scan and heap both equal the reference loop on real words', () => {
    const rand = seededRandom(11);
    for (let i = 0; i < 400; i++) {
      const w = words[Math.floor(rand() * words.length)]!;
      const text = rand() < 0.5 ? ` ${w}` : w;
      const want = referenceBpe(symbolsOf(text), ranks);
      expect(run(text, 'mergeScan')).toEqual(want);
      expect(run(text, 'mergeHeap')).toEqual(want);
    }
  });

  it('scan and heap agree with the reference on long words (concatenated words, repeats, mixed scripts)', () => {
    const rand = seededRandom(12);
    const samples = [
      'a'.repeat(300),
      ' '.repeat(200),
      'ab'.repeat(150),
      '😀é中'.repeat(40),
      '0123456789'.repeat(30),
    ];
    for (let i = 0; i < 30; i++) {
      let s = '';
      while (s.length < HEAP_THRESHOLD * 3) s += words[Math.floor(rand() * words.length)]!;
      samples.push(s);
    }
    for (const text of samples) {
      const want = referenceBpe(symbolsOf(text), ranks);
      expect(run(text, 'mergeHeap')).toEqual(want);
      expect(run(text, 'mergeScan')).toEqual(want);
      expect(run(text, 'merge')).toEqual(want);
    }
  });

  it('leaves words of 0 and 1 symbols alone', () => {
    const ids = new Int32Array([vocab['a']!]);
    expect(merger.merge(ids, 1)).toBe(1);
    expect(merger.merge(new Int32Array(0), 0)).toBe(0);
  });
});
