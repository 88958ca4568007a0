import type { MergeTable } from './merge-table.js';

/**
 * BPE on one pre-tokenized word (a sequence of token ids, initially one per byte).
 *
 * Rule (GPT-2 / tiktoken / Hugging Face): repeatedly merge the adjacent pair with the lowest merge rank,
 * leftmost first on ties, until no adjacent pair is a merge. For merges learned by BPE training (a merge's
 * parts always have lower ranks than the merge) this equals GPT-2's "merge every occurrence of the
 * best bigram, left to right" loop.
 *
 * Two implementations with identical results: a rank-array scan for short words (O(n^2) worst case, fastest
 * for the typical 1-10 bytes), and a linked list + binary heap for long words (O(n log n)), so a megabyte
 * without spaces or a long whitespace run does not take quadratic time.
 */

/** Words at least this long use the heap algorithm. */
export const HEAP_THRESHOLD = 48;

/** Heap keys pack rank * POS_SCALE + position into one float64; exact while rank, position < 2^26. */
const POS_SCALE = 2 ** 26;

/** Reusable scratch space for {@link BpeWordMerger.merge}; one per tokenizer (not re-entrant). */
export class BpeWordMerger {
  private ranks = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private heap = new Float64Array(192);

  constructor(private readonly table: MergeTable) {}

  /**
   * Merges `ids[0..n)` in place.
   * @returns the number of tokens left at the front of `ids`.
   */
  merge(ids: Int32Array, n: number): number {
    if (n < 2) return n;
    return n < HEAP_THRESHOLD ? this.mergeScan(ids, n) : this.mergeHeap(ids, n);
  }

  /** Rank-array scan: ranks[i] is the rank of (ids[i], ids[i+1]) or Infinity-like 0x7fffffff. */
  mergeScan(ids: Int32Array, n: number): number {
    const NONE = 0x7fffffff;
    if (this.ranks.length < n) this.ranks = new Int32Array(n * 2);
    const ranks = this.ranks;
    const table = this.table;
    for (let i = 0; i + 1 < n; i++) {
      const r = table.rank(ids[i]!, ids[i + 1]!);
      ranks[i] = r < 0 ? NONE : r;
    }
    for (;;) {
      let best = NONE;
      let at = -1;
      for (let i = 0; i + 1 < n; i++) {
        if (ranks[i]! < best) {
          best = ranks[i]!;
          at = i;
        }
      }
      if (at < 0) return n;
      ids[at] = table.merged(best);
      // remove position at+1
      for (let j = at + 1; j + 1 < n; j++) {
        ids[j] = ids[j + 1]!;
        ranks[j] = ranks[j + 1]!;
      }
      n--;
      if (at + 1 < n) {
        const r = table.rank(ids[at]!, ids[at + 1]!);
        ranks[at] = r < 0 ? NONE : r;
      }
      if (at > 0) {
        const r = table.rank(ids[at - 1]!, ids[at]!);
        ranks[at - 1] = r < 0 ? NONE : r;
      }
    }
  }

  /** Linked list of symbols + min-heap of candidate merges with lazy invalidation. */
  mergeHeap(ids: Int32Array, n: number): number {
    if (n >= POS_SCALE) {
      throw new Error(
        `BpeTokenizer: a single pre-token piece of ${n} bytes is too long (limit ${POS_SCALE - 1})`,
      );
    }
    if (this.prev.length < n) {
      this.prev = new Int32Array(n * 2);
      this.next = new Int32Array(n * 2);
    }
    if (this.heap.length < 3 * n) this.heap = new Float64Array(6 * n);
    const prev = this.prev;
    const next = this.next;
    const heap = this.heap;
    const table = this.table;
    let size = 0;

    const push = (key: number): void => {
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const pk = heap[parent]!;
        if (pk <= key) break;
        heap[i] = pk;
        i = parent;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap[--size]!;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) break;
        const r = l + 1;
        const c = r < size && heap[r]! < heap[l]! ? r : l;
        if (heap[c]! >= last) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
      return top;
    };

    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (let i = 0; i + 1 < n; i++) {
      const r = table.rank(ids[i]!, ids[i + 1]!);
      if (r >= 0) push(r * POS_SCALE + i);
    }
    // ids[pos] === -1 marks a symbol absorbed into its left neighbour.
    while (size > 0) {
      const key = pop();
      const rank = Math.floor(key / POS_SCALE);
      const pos = key - rank * POS_SCALE;
      const left = ids[pos]!;
      if (left < 0) continue;
      const right = next[pos]!;
      if (right < 0) continue;
      // Stale entry: one side has been merged since; each pair has one rank, so equal rank = same pair.
      if (table.rank(left, ids[right]!) !== rank) continue;
      ids[pos] = table.merged(rank);
      ids[right] = -1;
      const after = next[right]!;
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      const before = prev[pos]!;
      if (before >= 0) {
        const r = table.rank(ids[before]!, ids[pos]!);
        if (r >= 0) push(r * POS_SCALE + before);
      }
      if (after >= 0) {
        const r = table.rank(ids[pos]!, ids[after]!);
        if (r >= 0) push(r * POS_SCALE + pos);
      }
    }
    let out = 0;
    for (let i = 0; i >= 0; i = next[i]!) ids[out++] = ids[i]!;
    return out;
  }
}
