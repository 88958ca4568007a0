// `@relign/tensor`'s file access: node:fs in Node.js, a stand-in that rejects in a browser bundle.
import { nodeFs, nodePath } from '@relign/tensor';
import { BpeWordMerger } from './bpe-word.js';
import { bytesToUnicode, unicodeToBytes } from './byte-unicode.js';
import {
  parseMergesWithLines,
  parseSpecialTokensMap,
  parseVocab,
  serializeMerges,
  serializeSpecialTokensMap,
  serializeVocab,
  type SpecialTokensMap,
} from './format.js';
import { MergeTable } from './merge-table.js';
import { GPT2_PRETOKENIZE_PATTERN } from './pretokenize.js';
import { encodeUtf8Into, maxUtf8Length } from './utf8.js';

/**
 * Token strings with a role. `pad` may equal `eos` (GPT-2 has a single `<|endoftext|>` token): code that
 * batches sequences must carry explicit lengths and never infer masks from pad ids.
 */
export interface SpecialTokens {
  eos: string;
  pad: string;
  bos?: string;
}

/** Extra construction options for {@link BpeTokenizer.fromVocabAndMerges}. */
export interface BpeTokenizerOptions {
  /** Further special tokens (must be in the vocab): atomic under `allowSpecial`, dropped by `skipSpecial`. */
  additionalSpecialTokens?: readonly string[];
}

/** GPT-2's only special token, the default for every role when a vocab contains it. */
export const GPT2_EOS = '<|endoftext|>';

/** Pieces longer than this are not cached (the cache is for the many short, repeated words). */
const MAX_CACHED_PIECE = 64;
/** Bound on the word cache; it is emptied when full (cheap, and recent words refill it at once). */
const MAX_CACHE_ENTRIES = 100_000;

function describeToken(s: string): string {
  return JSON.stringify(s);
}

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/**
 * Byte-level BPE tokenizer, id-for-id compatible with GPT-2 (`vocab.json` + `merges.txt`, GPT-2's
 * pre-tokenization regex and byte -> unicode alphabet).
 *
 * Encoding: split text with {@link GPT2_PRETOKENIZE_PATTERN}; map each piece's UTF-8 bytes to the ids of
 * the 256 byte symbols; apply merges by rank (see `bpe-word.ts`); pieces are cached. Decoding: concatenate
 * the bytes of each token and decode UTF-8 with replacement (U+FFFD) of invalid sequences, as GPT-2's
 * `errors='replace'` does. Special tokens are plain text to `encode` unless `allowSpecial` is set.
 */
export class BpeTokenizer {
  /** Embedding rows needed: the largest id + 1. */
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId: number;
  readonly bosId: number | undefined;
  /** The role strings, as resolved (pad defaults to eos). */
  readonly specialTokens: Readonly<SpecialTokens>;
  /** Every special token string: eos, pad, bos, then the additional ones, without repeats. */
  readonly allSpecialTokens: readonly string[];

  private readonly tokenIds: Map<string, number>;
  private readonly tokens: (string | undefined)[];
  private readonly tokenBytes: (Uint8Array | undefined)[];
  private readonly specialIdSet: Set<number>;
  private readonly mergeList: [string, string][];
  private readonly byteIds: Int32Array;
  private readonly merger: BpeWordMerger;
  private readonly pieceRe: RegExp;
  private readonly specialRe: RegExp | undefined;
  private readonly cache = new Map<string, Int32Array | number>();
  private byteBuf = new Uint8Array(1024);
  private idBuf = new Int32Array(1024);
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  private constructor(init: {
    tokenIds: Map<string, number>;
    tokens: (string | undefined)[];
    merges: [string, string][];
    table: MergeTable;
    byteIds: Int32Array;
    specials: SpecialTokens;
    allSpecial: string[];
  }) {
    this.tokenIds = init.tokenIds;
    this.tokens = init.tokens;
    this.vocabSize = init.tokens.length;
    this.mergeList = init.merges;
    this.byteIds = init.byteIds;
    this.merger = new BpeWordMerger(init.table);
    this.specialTokens = Object.freeze({ ...init.specials });
    this.allSpecialTokens = Object.freeze(init.allSpecial.slice());
    this.eosId = init.tokenIds.get(init.specials.eos)!;
    this.padId = init.tokenIds.get(init.specials.pad)!;
    this.bosId = init.specials.bos === undefined ? undefined : init.tokenIds.get(init.specials.bos)!;
    this.specialIdSet = new Set(init.allSpecial.map((s) => init.tokenIds.get(s)!));
    this.pieceRe = new RegExp(GPT2_PRETOKENIZE_PATTERN.source, GPT2_PRETOKENIZE_PATTERN.flags);
    // Longest first, so that a special token that is a prefix of another never wins over it.
    const bySize = init.allSpecial.slice().sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    this.specialRe = bySize.length > 0 ? new RegExp(bySize.map(escapeRegExp).join('|'), 'gu') : undefined;

    const fromUnicode = unicodeToBytes();
    const utf8 = new TextEncoder();
    this.tokenBytes = init.tokens.map((tok, id) => {
      if (tok === undefined) return undefined;
      // Special tokens stand for their literal text; so does any token outside the byte alphabet
      // (an added token in a third-party vocab), since it cannot be read as bytes.
      if (this.specialIdSet.has(id)) return utf8.encode(tok);
      const bytes = new Uint8Array(tok.length);
      for (let i = 0; i < tok.length; i++) {
        const b = fromUnicode.get(tok.charCodeAt(i));
        if (b === undefined) return utf8.encode(tok);
        bytes[i] = b;
      }
      return bytes;
    });
  }

  /**
   * Builds a tokenizer from a token -> id map and merges (merges.txt text, or pairs in rank order).
   *
   * `specials`: when omitted, every role is `<|endoftext|>` (GPT-2). When given, `eos` defaults to
   * `<|endoftext|>`, `pad` to `eos`, and `bos` stays undefined unless set. Every special must be in `vocab`.
   * @throws on non-integer or repeated ids, a missing byte symbol, a malformed merge, a merge whose parts
   *   or result are not in `vocab`, a repeated merge, or a special token that is not in `vocab`.
   */
  static fromVocabAndMerges(
    vocab: Record<string, number>,
    merges: string | [string, string][],
    specials?: Partial<SpecialTokens>,
    options: BpeTokenizerOptions = {},
  ): BpeTokenizer {
    return BpeTokenizer.build(vocab, merges, specials, options.additionalSpecialTokens ?? [], {
      vocab: 'vocab',
      merges: 'merges.txt',
    });
  }

  /**
   * Loads `vocab.json`, `merges.txt` and, when present, `special_tokens_map.json` (Hugging Face layout; values
   * may be strings or `{"content": ...}` objects) from `dir`. Without special_tokens_map.json every role is
   * `<|endoftext|>`; with it, a missing `pad_token` means pad = eos. Node only (reads files).
   */
  static async fromDirectory(dir: string): Promise<BpeTokenizer> {
    if (typeof dir !== 'string' || dir === '') {
      throw new Error('BpeTokenizer.fromDirectory: dir must be a non-empty directory path');
    }
    const fs = nodeFs;
    const path = nodePath;
    const read = async (
      name: string,
      required: boolean,
    ): Promise<{ text: string; file: string } | undefined> => {
      const file = path.join(dir, name);
      try {
        return { text: await fs.readFile(file, 'utf8'), file };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (!required && code === 'ENOENT') return undefined;
        if (code === 'ENOENT') {
          throw new Error(
            `BpeTokenizer.fromDirectory: missing ${name} at ${file} (a byte-level BPE directory holds vocab.json and merges.txt, as GPT-2 / Hugging Face)`,
          );
        }
        throw new Error(`BpeTokenizer.fromDirectory: cannot read ${file}: ${(e as Error).message}`);
      }
    };
    const vocabFile = (await read('vocab.json', true))!;
    const mergesFile = (await read('merges.txt', true))!;
    const mapFile = await read('special_tokens_map.json', false);
    return BpeTokenizer.fromTexts(
      { vocab: vocabFile.text, merges: mergesFile.text, specialTokensMap: mapFile?.text },
      { vocab: vocabFile.file, merges: mergesFile.file, specials: mapFile?.file },
    );
  }

  /**
   * The browser-safe form of {@link fromDirectory}: the texts of `vocab.json`, `merges.txt` and (optional)
   * `special_tokens_map.json`, e.g. fetched from a URL or read from a `File`. `sources` name them in errors.
   */
  static fromTexts(
    texts: { vocab: string; merges: string; specialTokensMap?: string | undefined },
    sources: { vocab?: string; merges?: string; specials?: string | undefined } = {},
  ): BpeTokenizer {
    const vocabSource = sources.vocab ?? 'vocab.json';
    const mergesSource = sources.merges ?? 'merges.txt';
    const vocab = parseVocab(texts.vocab, vocabSource);
    const merges = parseMergesNumbered(texts.merges, mergesSource);
    let specials: Partial<SpecialTokens> | undefined;
    let additional: string[] = [];
    if (texts.specialTokensMap !== undefined) {
      const map = parseSpecialTokensMap(
        texts.specialTokensMap,
        sources.specials ?? 'special_tokens_map.json',
      );
      specials = {};
      if (map.eos !== undefined) specials.eos = map.eos;
      if (map.pad !== undefined) specials.pad = map.pad;
      if (map.bos !== undefined) specials.bos = map.bos;
      additional = map.additional;
    }
    return BpeTokenizer.build(vocab, merges, specials, additional, {
      vocab: vocabSource,
      merges: mergesSource,
      specials:
        texts.specialTokensMap === undefined ? undefined : (sources.specials ?? 'special_tokens_map.json'),
    });
  }

  private static build(
    vocab: Record<string, number>,
    mergesIn: string | [string, string][] | NumberedMerges,
    specialsIn: Partial<SpecialTokens> | undefined,
    additional: readonly string[],
    names: { vocab: string; merges: string; specials?: string | undefined },
  ): BpeTokenizer {
    // ---- vocab
    if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab)) {
      throw new Error(`${names.vocab}: expected an object mapping token strings to integer ids`);
    }
    const tokenIds = new Map<string, number>();
    const tokens: (string | undefined)[] = [];
    for (const [tok, id] of Object.entries(vocab)) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= 2 ** 24) {
        throw new Error(
          `${names.vocab}: id of token ${describeToken(tok)} must be an integer in [0, 2^24), got ${String(id)}`,
        );
      }
      const prior = tokens[id];
      if (prior !== undefined) {
        throw new Error(
          `${names.vocab}: tokens ${describeToken(prior)} and ${describeToken(tok)} share id ${id}`,
        );
      }
      while (tokens.length <= id) tokens.push(undefined);
      tokens[id] = tok;
      tokenIds.set(tok, id);
    }
    if (tokenIds.size === 0) throw new Error(`${names.vocab}: the vocabulary is empty`);
    const byteIds = new Int32Array(256);
    bytesToUnicode().forEach((sym, byte) => {
      const id = tokenIds.get(sym);
      if (id === undefined) {
        throw new Error(
          `${names.vocab}: missing the byte-level symbol ${describeToken(sym)} for byte 0x${byte.toString(16).padStart(2, '0')}; a byte-level BPE vocab must contain all 256 byte symbols (see bytesToUnicode())`,
        );
      }
      byteIds[byte] = id;
    });

    // ---- merges
    let numbered: NumberedMerges;
    if (typeof mergesIn === 'string') numbered = parseMergesNumbered(mergesIn, names.merges);
    else if (Array.isArray(mergesIn)) {
      numbered = {
        merges: mergesIn.map((m, i) => {
          if (!Array.isArray(m) || m.length !== 2 || typeof m[0] !== 'string' || typeof m[1] !== 'string') {
            throw new Error(`merges[${i}]: expected a pair [left, right] of token strings`);
          }
          return [m[0], m[1]] as [string, string];
        }),
        where: (i) => `merges[${i}]`,
      };
    } else numbered = mergesIn;
    const { merges, where } = numbered;
    const table = new MergeTable(merges.length);
    merges.forEach(([a, b], rank) => {
      const left = tokenIds.get(a);
      const right = tokenIds.get(b);
      const merged = tokenIds.get(a + b);
      for (const [tok, id] of [
        [a, left],
        [b, right],
        [a + b, merged],
      ] as const) {
        if (id === undefined) {
          throw new Error(
            `${where(rank)}: merge ${describeToken(`${a} ${b}`)} needs token ${describeToken(tok)}, which is not in ${names.vocab} (vocab and merges do not belong together)`,
          );
        }
      }
      const earlier = table.add(left!, right!, merged!);
      if (earlier >= 0)
        throw new Error(`${where(rank)}: merge ${describeToken(`${a} ${b}`)} repeats ${where(earlier)}`);
    });

    // ---- specials
    const specialsSource = names.specials ?? 'specials';
    let specials: SpecialTokens;
    const hasEot = tokenIds.has(GPT2_EOS);
    if (specialsIn === undefined) {
      if (!hasEot) {
        throw new Error(
          `${specialsSource}: no special tokens given and ${names.vocab} has no ${GPT2_EOS}; pass { eos, pad } naming tokens of the vocab`,
        );
      }
      specials = { eos: GPT2_EOS, pad: GPT2_EOS, bos: GPT2_EOS };
    } else {
      const eos = specialsIn.eos ?? (hasEot ? GPT2_EOS : undefined);
      if (eos === undefined) {
        throw new Error(
          `${specialsSource}: no eos token given and ${names.vocab} has no ${GPT2_EOS}; set eos`,
        );
      }
      specials = { eos, pad: specialsIn.pad ?? eos };
      if (specialsIn.bos !== undefined) specials.bos = specialsIn.bos;
    }
    const roles: [string, string | undefined][] = [
      ['eos', specials.eos],
      ['pad', specials.pad],
      ['bos', specials.bos],
      ...additional.map((s, i): [string, string] => [`additionalSpecialTokens[${i}]`, s]),
    ];
    const allSpecial: string[] = [];
    for (const [role, tok] of roles) {
      if (tok === undefined) continue;
      if (typeof tok !== 'string' || tok === '') {
        throw new Error(`${specialsSource}: ${role} must be a non-empty token string`);
      }
      if (!tokenIds.has(tok)) {
        throw new Error(`${specialsSource}: ${role} token ${describeToken(tok)} is not in ${names.vocab}`);
      }
      if (!allSpecial.includes(tok)) allSpecial.push(tok);
    }
    return new BpeTokenizer({ tokenIds, tokens, merges, table, byteIds, specials, allSpecial });
  }

  /** Merges in rank order (as in merges.txt). */
  get merges(): readonly (readonly [string, string])[] {
    return this.mergeList;
  }

  /**
   * Token ids of `text`. Special-token strings inside `text` are ordinary text (split by BPE like any other)
   * unless `allowSpecial` is true, in which case each occurrence becomes its single special id.
   */
  encode(text: string, options: { allowSpecial?: boolean } = {}): number[] {
    if (typeof text !== 'string')
      throw new Error(`BpeTokenizer.encode: text must be a string, got ${typeof text}`);
    const out: number[] = [];
    const re = this.specialRe;
    if (options.allowSpecial === true && re !== undefined) {
      re.lastIndex = 0;
      let last = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m.index > last) this.encodeOrdinary(text.slice(last, m.index), out);
        out.push(this.tokenIds.get(m[0])!);
        last = m.index + m[0].length;
      }
      if (last < text.length) this.encodeOrdinary(last === 0 ? text : text.slice(last), out);
    } else {
      this.encodeOrdinary(text, out);
    }
    return out;
  }

  /** `encode` of each text (special-token strings are plain text). */
  encodeBatch(texts: string[]): number[][] {
    if (!Array.isArray(texts)) throw new Error('BpeTokenizer.encodeBatch: texts must be an array of strings');
    return texts.map((t, i) => {
      if (typeof t !== 'string') throw new Error(`BpeTokenizer.encodeBatch: texts[${i}] must be a string`);
      return this.encode(t);
    });
  }

  private encodeOrdinary(text: string, out: number[]): void {
    const re = this.pieceRe;
    const cache = this.cache;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const piece = m[0];
      const hit = cache.get(piece);
      if (hit !== undefined) {
        if (typeof hit === 'number') out.push(hit);
        else for (let i = 0; i < hit.length; i++) out.push(hit[i]!);
        continue;
      }
      const ids = this.bpePiece(piece);
      const n = ids.length;
      for (let i = 0; i < n; i++) out.push(ids[i]!);
      if (piece.length <= MAX_CACHED_PIECE) {
        if (cache.size >= MAX_CACHE_ENTRIES) cache.clear();
        cache.set(piece, n === 1 ? ids[0]! : ids.slice());
      }
    }
  }

  /** BPE ids of one pre-token piece (a view into scratch space: copy before the next call). */
  private bpePiece(piece: string): Int32Array {
    const cap = maxUtf8Length(piece);
    if (this.byteBuf.length < cap) {
      this.byteBuf = new Uint8Array(cap * 2);
      this.idBuf = new Int32Array(cap * 2);
    }
    const bytes = this.byteBuf;
    const ids = this.idBuf;
    const n = encodeUtf8Into(piece, bytes);
    const byteIds = this.byteIds;
    for (let i = 0; i < n; i++) ids[i] = byteIds[bytes[i]!]!;
    return ids.subarray(0, this.merger.merge(ids, n));
  }

  /**
   * Text of `ids`. Byte sequences that are not valid UTF-8 (a token sequence cut inside a character)
   * decode to U+FFFD, like GPT-2's `errors='replace'`. `skipSpecial` drops every special token.
   * @throws on an id that is not an integer id of this vocabulary, naming its index.
   */
  decode(ids: ArrayLike<number>, options: { skipSpecial?: boolean } = {}): string {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new Error('BpeTokenizer.decode: ids must be an array (or typed array) of token ids');
    }
    const skip = options.skipSpecial === true;
    const tokenBytes = this.tokenBytes;
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const b = tokenBytes[id];
      if (b === undefined) {
        throw new Error(
          `BpeTokenizer.decode: ids[${i}] = ${String(id)} is not a token id of this vocabulary (vocabSize ${this.vocabSize})`,
        );
      }
      if (!(skip && this.specialIdSet.has(id))) total += b.length;
    }
    const buf = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (skip && this.specialIdSet.has(id)) continue;
      const b = tokenBytes[id]!;
      if (b.length === 1) buf[at++] = b[0]!;
      else {
        buf.set(b, at);
        at += b.length;
      }
    }
    return this.decoder.decode(buf);
  }

  /** Id of a token string (in the byte-level alphabet, e.g. `'Ġthe'`), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tokenIds.get(token);
  }

  /** Token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) ? this.tokens[id] : undefined;
  }

  /** Whether `id` is one of the special tokens. */
  isSpecialId(id: number): boolean {
    return this.specialIdSet.has(id);
  }

  /** Writes vocab.json, merges.txt (`#version: 0.2` header) and special_tokens_map.json into `dir` (created). */
  async save(dir: string): Promise<void> {
    if (typeof dir !== 'string' || dir === '')
      throw new Error('BpeTokenizer.save: dir must be a non-empty path');
    const fs = nodeFs;
    const path = nodePath;
    await fs.mkdir(dir, { recursive: true });
    const map: SpecialTokensMap = {
      eos: this.specialTokens.eos,
      pad: this.specialTokens.pad,
      additional: this.allSpecialTokens.filter(
        (s) => s !== this.specialTokens.eos && s !== this.specialTokens.pad && s !== this.specialTokens.bos,
      ),
    };
    if (this.specialTokens.bos !== undefined) map.bos = this.specialTokens.bos;
    await fs.writeFile(path.join(dir, 'vocab.json'), serializeVocab(this.tokens));
    await fs.writeFile(path.join(dir, 'merges.txt'), serializeMerges(this.mergeList));
    await fs.writeFile(path.join(dir, 'special_tokens_map.json'), serializeSpecialTokensMap(map));
  }
}

interface NumberedMerges {
  merges: [string, string][];
  /** "file line N" for the merge of a rank */
  where: (rank: number) => string;
}

/** Parsed merges that remember each merge's line for later error messages. */
function parseMergesNumbered(text: string, source: string): NumberedMerges {
  const { merges, lines } = parseMergesWithLines(text, source);
  return { merges, where: (rank) => `${source} line ${lines[rank] ?? '?'}` };
}
