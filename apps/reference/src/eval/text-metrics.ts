/**
 * Collapse signs of generated text: distinct-n (diversity across responses) and repetition (within a
 * response). A policy that games its reward model often collapses to a few phrases ("great great great!!!"):
 * distinct-n falls and repetition rises while the proxy reward climbs.
 */

/**
 * Splits text into lowercase word and punctuation tokens: runs of letters/digits (with an inner
 * apostrophe, "don't") are words, every other non-space character is a token of its own ("!!!" is three).
 * Evaluation counts n-grams over these, not over BPE ids, so the numbers read the same for any tokenizer.
 */
export function textTokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]/gu) ?? [];
}

function checkN(n: number, fn: string): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${fn}: n must be an integer >= 1, got ${String(n)}.`);
}

function ngramKeys(seq: readonly (string | number)[], n: number): string[] {
  const keys: string[] = [];
  for (let i = 0; i + n <= seq.length; i++) keys.push(seq.slice(i, i + n).join('\u0001'));
  return keys;
}

/**
 * distinct-n over a set of responses: unique n-grams / total n-grams, both counted over all responses
 * together (Li et al. 2016). 1 = no n-gram repeats anywhere; near 0 = the policy says the same thing to
 * every prompt.
 *
 * @param sequences token sequences (e.g. {@link textTokens} of each response).
 * @returns a value in [0, 1]; 0 when no response has n tokens.
 */
export function distinctN(sequences: readonly (readonly (string | number)[])[], n: number): number {
  checkN(n, 'distinctN');
  const unique = new Set<string>();
  let total = 0;
  for (const seq of sequences) {
    const keys = ngramKeys(seq, n);
    total += keys.length;
    for (const k of keys) unique.add(k);
  }
  return total === 0 ? 0 : unique.size / total;
}

/**
 * Repetition within responses: for each response with at least one n-gram, the fraction of its n-grams
 * that repeat an earlier n-gram of the same response, `1 − unique / total` (the seq-rep-n of Welleck et
 * al. 2019); averaged over those responses. Default n = 2 (bigrams: short reviews rarely repeat a bigram,
 * while a collapsed policy does).
 *
 * @returns a value in [0, 1); 0 when no response has n tokens.
 */
export function repetition(sequences: readonly (readonly (string | number)[])[], n = 2): number {
  checkN(n, 'repetition');
  let sum = 0;
  let counted = 0;
  for (const seq of sequences) {
    const keys = ngramKeys(seq, n);
    if (keys.length === 0) continue;
    sum += 1 - new Set(keys).size / keys.length;
    counted++;
  }
  return counted === 0 ? 0 : sum / counted;
}
