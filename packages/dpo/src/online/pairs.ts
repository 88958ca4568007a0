/**
 * Rollout pairs for online DPO: finding the pairs whose two responses are the same token sequence (they carry
 * no preference, so they are skipped and counted) and keeping a subset of a rollout's pairs.
 */
import type { RolloutMinibatch } from '@relign/rollout';

/**
 * Per pair of a two-responses-per-prompt rollout (rows `2i`, `2i + 1`), whether both responses are the same
 * token sequence (same length, same ids; the stop token included).
 * @returns `[B / 2]` flags.
 */
export function identicalPairs(batch: RolloutMinibatch): boolean[] {
  const { batchSize: B, responseWidth: Tr } = batch;
  const out: boolean[] = [];
  for (let i = 0; i < B / 2; i++) {
    const a = 2 * i;
    const b = a + 1;
    const n = batch.responseLengths[a]!;
    let same = n === batch.responseLengths[b];
    for (let t = 0; same && t < n; t++)
      same = batch.responseTokens[a * Tr + t] === batch.responseTokens[b * Tr + t];
    out.push(same);
  }
  return out;
}

/**
 * The rollout restricted to the pairs `pairs` (indices into its `B / 2` pairs, in the order given), re-padded
 * to the kept rows' widths: prompts stay left-padded, responses right-padded, and every per-row field (scores,
 * reference log-probs, versions, group ids) follows its row. `policyVersion` is the oldest kept row's.
 *
 * @throws Error on an empty or out-of-range selection.
 */
export function selectPairs(batch: RolloutMinibatch, pairs: readonly number[]): RolloutMinibatch {
  const P = batch.batchSize / 2;
  if (pairs.length === 0)
    throw new Error('selectPairs: no pairs selected; a rollout needs at least one pair.');
  const rows: number[] = [];
  for (const i of pairs) {
    if (!Number.isInteger(i) || i < 0 || i >= P)
      throw new Error(`selectPairs: pair index ${i} is outside [0, ${P}).`);
    rows.push(2 * i, 2 * i + 1);
  }
  const { promptWidth: Tp0, responseWidth: Tr0 } = batch;
  let Tp = 1;
  let Tr = 1;
  for (const r of rows) {
    Tp = Math.max(Tp, batch.promptLengths[r]!);
    Tr = Math.max(Tr, batch.responseLengths[r]!);
  }
  const B = rows.length;
  const pick = <T extends Int32Array | Uint8Array | Float32Array | Float64Array>(src: T): T => {
    const out = new (src.constructor as new (n: number) => T)(B);
    rows.forEach((r, k) => (out[k] = src[r]!));
    return out;
  };
  // Per-token arrays: the last Tp prompt columns (left padding), the first Tr response columns.
  const promptTokens = new Int32Array(B * Tp);
  const tokenRows = <T extends Int32Array | Float32Array>(src: T): T => {
    const out = new (src.constructor as new (n: number) => T)(B * Tr);
    rows.forEach((r, k) => out.set(src.subarray(r * Tr0, r * Tr0 + Tr), k * Tr));
    return out;
  };
  rows.forEach((r, k) =>
    promptTokens.set(batch.promptTokens.subarray(r * Tp0 + Tp0 - Tp, (r + 1) * Tp0), k * Tp),
  );
  const policyVersions = pick(batch.policyVersions);
  const out: RolloutMinibatch = {
    batchSize: B,
    responsesPerPrompt: batch.responsesPerPrompt,
    promptWidth: Tp,
    responseWidth: Tr,
    promptTokens,
    promptLengths: pick(batch.promptLengths),
    responseTokens: tokenRows(batch.responseTokens),
    responseLengths: pick(batch.responseLengths),
    logprobs: tokenRows(batch.logprobs),
    endedWithEos: pick(batch.endedWithEos),
    truncated: pick(batch.truncated),
    groupIds: pick(batch.groupIds),
    options: batch.options,
    policyVersion: Math.min(...policyVersions),
    rewards: pick(batch.rewards),
    policyVersions,
  };
  if (batch.refLogprobs) out.refLogprobs = tokenRows(batch.refLogprobs);
  if (batch.values) out.values = tokenRows(batch.values);
  return out;
}
