/**
 * Row selection for minibatches and micro-batches. PPO updates on individual responses (one action sequence
 * each; docs/algorithms.md §4.6), so minibatches are drawn by row, not by prompt group, and each selection is re-padded to
 * its own widths (the longest prompt and response among its rows) so a minibatch of short responses does not
 * pay for the rollout's longest one.
 */
import type { RolloutBatch } from '@relign/rollout';

/**
 * The rows `rows` of `batch` as a new {@link RolloutBatch} (host copies) with `responsesPerPrompt = 1` and the
 * original row indices as group ids, prompt width = longest selected prompt (still left-padded), response
 * width = longest selected response (still right-padded).
 */
export function selectRows(batch: RolloutBatch, rows: readonly number[]): RolloutBatch {
  const { promptWidth: Tp, responseWidth: Tr } = batch;
  const n = rows.length;
  if (n === 0) throw new Error('selectRows: no rows selected.');
  let tp = 1;
  let tr = 1;
  for (const r of rows) {
    if (!Number.isInteger(r) || r < 0 || r >= batch.batchSize) {
      throw new Error(`selectRows: row ${r} is outside [0, ${batch.batchSize}).`);
    }
    tp = Math.max(tp, batch.promptLengths[r]!);
    tr = Math.max(tr, batch.responseLengths[r]!);
  }
  const promptTokens = new Int32Array(n * tp);
  const responseTokens = new Int32Array(n * tr);
  rows.forEach((r, i) => {
    promptTokens.set(batch.promptTokens.subarray(r * Tp + Tp - tp, (r + 1) * Tp), i * tp);
    responseTokens.set(batch.responseTokens.subarray(r * Tr, r * Tr + tr), i * tr);
  });
  const pick = <A extends Int32Array | Uint8Array>(a: A, make: (n: number) => A): A => {
    const out = make(n);
    rows.forEach((r, i) => (out[i] = a[r]!));
    return out;
  };
  return {
    batchSize: n,
    responsesPerPrompt: 1,
    promptWidth: tp,
    responseWidth: tr,
    promptTokens,
    promptLengths: pick(batch.promptLengths, (k) => new Int32Array(k)),
    responseTokens,
    responseLengths: pick(batch.responseLengths, (k) => new Int32Array(k)),
    logprobs: selectTokens(batch.logprobs, Tr, rows, tr),
    endedWithEos: pick(batch.endedWithEos, (k) => new Uint8Array(k)),
    truncated: pick(batch.truncated, (k) => new Uint8Array(k)),
    groupIds: Int32Array.from(rows),
    options: batch.options,
    policyVersion: batch.policyVersion,
  };
}

/** Rows `rows` of a host per-token array `[B, width]`, cut to the first `newWidth` columns: `[rows.length, newWidth]`. */
export function selectTokens(
  values: Float32Array,
  width: number,
  rows: readonly number[],
  newWidth: number,
): Float32Array {
  const out = new Float32Array(rows.length * newWidth);
  rows.forEach((r, i) => out.set(values.subarray(r * width, r * width + newWidth), i * newWidth));
  return out;
}

/** `items` cut into consecutive chunks of at most `size` (one chunk with everything when `size` is 0). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  if (size <= 0 || size >= items.length) return [items.slice()];
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
