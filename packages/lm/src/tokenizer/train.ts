import { BpeTokenizer, GPT2_EOS, type SpecialTokens } from './bpe-tokenizer.js';
import { bytesToUnicode } from './byte-unicode.js';
import { GPT2_PRETOKENIZE_PATTERN } from './pretokenize.js';

/** Options of {@link trainBpe}. */
export interface TrainBpeOptions {
  /** Total vocabulary size: 256 byte symbols + learned merges + special tokens. At least 256 + specials. */
  vocabSize: number;
  /** Special tokens, given ids at the end of the vocab in this order. Default `['<|endoftext|>']`. */
  specialTokens?: string[];
  /** A pair is merged only if it occurs at least this often (default 2). */
  minFrequency?: number;
  /**
   * Roles of the special tokens (each must be one of `specialTokens`). Default: eos = `specialTokens[0]`,
   * pad = eos, no bos.
   */
  roles?: Partial<SpecialTokens>;
}

/** Max-heap of (count, pair key): higher count first, then the smaller key (left id, then right id). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top; returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!;
    const lastK = this.keys.pop()!;
    const n = this.counts.length;
    if (n > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.before(r, l) ? r : l;
        if (!this.before(c, i)) break;
        this.swap(c, i);
        i = c;
      }
    }
    return top;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/**
 * Trains a byte-level BPE vocabulary on `texts` (GPT-2 scheme, for the project's small default model).
 *
 * Base alphabet: the 256 byte symbols of {@link bytesToUnicode}, ids 0..255 in code-point order (GPT-2's own
 * order). Texts are split at special-token occurrences (specials are never merged), pre-tokenized with
 * GPT-2's regex, and the most frequent adjacent pair over all words is merged repeatedly; ties go to the
 * smaller (left id, right id), so training is deterministic. Special tokens take the last ids.
 *
 * @returns a tokenizer with exactly `vocabSize` tokens.
 * @throws when `vocabSize` is not an integer >= 256 + specials, on bad special tokens, or when the corpus
 *   has too few pairs occurring `minFrequency` times to reach `vocabSize`.
 */
export function trainBpe(texts: Iterable<string>, options: TrainBpeOptions): BpeTokenizer {
  if (options === null || typeof options !== 'object') {
    throw new Error('trainBpe: options { vocabSize } are required');
  }
  const specials = options.specialTokens ?? [GPT2_EOS];
  if (!Array.isArray(specials) || specials.length === 0) {
    throw new Error('trainBpe: specialTokens must be a non-empty array (an eos token is required)');
  }
  const alphabet = bytesToUnicode().sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
  const seen = new Set<string>();
  specials.forEach((s, i) => {
    if (typeof s !== 'string' || s === '')
      throw new Error(`trainBpe: specialTokens[${i}] must be a non-empty string`);
    if (seen.has(s)) throw new Error(`trainBpe: specialTokens[${i}] ${JSON.stringify(s)} is repeated`);
    if (alphabet.includes(s)) {
      throw new Error(`trainBpe: specialTokens[${i}] ${JSON.stringify(s)} collides with a byte-level symbol`);
    }
    seen.add(s);
  });
  const { vocabSize } = options;
  const minSize = 256 + specials.length;
  if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize) || vocabSize < minSize) {
    throw new Error(
      `trainBpe: vocabSize must be an integer >= ${minSize} (256 byte symbols + ${specials.length} special tokens), got ${String(vocabSize)}`,
    );
  }
  if (vocabSize > 2 ** 20) throw new Error(`trainBpe: vocabSize ${vocabSize} is larger than 2^20`);
  const minFrequency = options.minFrequency ?? 2;
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new Error(`trainBpe: minFrequency must be an integer >= 1, got ${String(minFrequency)}`);
  }
  const roles = options.roles ?? {};
  for (const role of ['eos', 'pad', 'bos'] as const) {
    const tok = roles[role];
    if (tok !== undefined && !seen.has(tok)) {
      throw new Error(`trainBpe: roles.${role} ${JSON.stringify(tok)} is not in specialTokens; add it there`);
    }
  }

  // ---- count pre-tokenized words (specials cut the text and are never part of a word)
  const wordFreq = new Map<string, number>();
  const pieceRe = new RegExp(GPT2_PRETOKENIZE_PATTERN.source, GPT2_PRETOKENIZE_PATTERN.flags);
  const specialRe = new RegExp(
    specials
      .slice()
      .sort((a, b) => b.length - a.length)
      .map(escapeRegExp)
      .join('|'),
    'u',
  );
  let index = 0;
  for (const text of texts) {
    if (typeof text !== 'string')
      throw new Error(`trainBpe: texts[${index}] must be a string, got ${typeof text}`);
    for (const segment of text.split(specialRe)) {
      pieceRe.lastIndex = 0;
      for (let m = pieceRe.exec(segment); m !== null; m = pieceRe.exec(segment)) {
        wordFreq.set(m[0], (wordFreq.get(m[0]) ?? 0) + 1);
      }
    }
    index++;
  }

  // ---- words as symbol-id arrays
  const tokens: string[] = alphabet.slice();
  const byteToId = new Int32Array(256);
  bytesToUnicode().forEach((sym, byte) => (byteToId[byte] = alphabet.indexOf(sym)));
  const encoder = new TextEncoder();
  const words: number[][] = [];
  const freqs: number[] = [];
  // Sorted so that the word order (and so nothing downstream) depends on Map insertion order.
  for (const w of [...wordFreq.keys()].sort()) {
    words.push(Array.from(encoder.encode(w), (b) => byteToId[b]!));
    freqs.push(wordFreq.get(w)!);
  }

  // ---- pair statistics
  const K = vocabSize; // pair key = left * K + right; ordering of keys = (left, right) lexicographic
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const heap = new PairHeap();
  for (let w = 0; w < words.length; w++) {
    const sym = words[w]!;
    const f = freqs[w]!;
    for (let i = 0; i + 1 < sym.length; i++) {
      const key = sym[i]! * K + sym[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + f);
      let list = pairWords.get(key);
      if (list === undefined) pairWords.set(key, (list = []));
      if (list[list.length - 1] !== w) list.push(w);
    }
  }
  for (const [key, c] of pairCount) heap.push(c, key);

  const merges: [string, string][] = [];
  const wanted = vocabSize - minSize;
  const stamp = new Int32Array(words.length).fill(-1);
  const delta = new Map<number, number>();
  while (merges.length < wanted) {
    if (heap.size === 0) break;
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      // Stale entry; a lower current count still needs an entry (increases push their own).
      if (current > 0 && current < count) heap.push(current, key);
      continue;
    }
    if (count < minFrequency) break;
    const left = Math.floor(key / K);
    const right = key - left * K;
    const mergedStr = tokens[left]! + tokens[right]!;
    pairCount.delete(key);
    if (seen.has(mergedStr)) continue; // would duplicate a special token's string: never merge it
    const newId = tokens.length;
    tokens.push(mergedStr);
    merges.push([tokens[left]!, tokens[right]!]);
    const step = merges.length;
    for (const w of pairWords.get(key) ?? []) {
      if (stamp[w] === step) continue;
      stamp[w] = step;
      const sym = words[w]!;
      const f = freqs[w]!;
      let found = false;
      for (let i = 0; i + 1 < sym.length; i++) {
        if (sym[i] === left && sym[i + 1] === right) {
          found = true;
          break;
        }
      }
      if (!found) continue; // stale: an earlier merge consumed this word's occurrences
      delta.clear();
      for (let i = 0; i + 1 < sym.length; i++) {
        const k = sym[i]! * K + sym[i + 1]!;
        delta.set(k, (delta.get(k) ?? 0) - f);
      }
      // Left-to-right, non-overlapping: the same rule encoding applies.
      const out: number[] = [];
      for (let i = 0; i < sym.length; i++) {
        if (i + 1 < sym.length && sym[i] === left && sym[i + 1] === right) {
          out.push(newId);
          i++;
        } else out.push(sym[i]!);
      }
      words[w] = out;
      for (let i = 0; i + 1 < out.length; i++) {
        const k = out[i]! * K + out[i + 1]!;
        delta.set(k, (delta.get(k) ?? 0) + f);
        if (out[i] === newId || out[i + 1] === newId) {
          let list = pairWords.get(k);
          if (list === undefined) pairWords.set(k, (list = []));
          if (list[list.length - 1] !== w) list.push(w);
        }
      }
      for (const [k, d] of delta) {
        if (d === 0 || k === key) continue;
        const c = (pairCount.get(k) ?? 0) + d;
        if (c > 0) pairCount.set(k, c);
        else pairCount.delete(k);
        if (d > 0) heap.push(c, k);
      }
    }
    pairWords.delete(key);
  }
  if (merges.length < wanted) {
    throw new Error(
      `trainBpe: the corpus supports only ${merges.length} merges occurring at least minFrequency=${minFrequency} times, so vocabSize ${vocabSize} cannot be reached (max ${minSize + merges.length}); lower vocabSize or minFrequency, or add text`,
    );
  }

  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  tokens.forEach((t, id) => (vocab[t] = id));
  specials.forEach((s, i) => (vocab[s] = tokens.length + i));
  const eos = roles.eos ?? specials[0]!;
  const resolved: Partial<SpecialTokens> = { eos, pad: roles.pad ?? eos };
  if (roles.bos !== undefined) resolved.bos = roles.bos;
  return BpeTokenizer.fromVocabAndMerges(vocab, merges, resolved, { additionalSpecialTokens: specials });
}
