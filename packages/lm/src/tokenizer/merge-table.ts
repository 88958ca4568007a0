/**
 * Merge-rank lookup for byte-level BPE: (left token id, right token id) -> rank (position in merges.txt) and
 * the id of the merged token. An open-addressing hash table over `Int32Array`s: the pair key of a 50k-token
 * vocabulary does not fit a small integer, and `Map` with non-Smi number or string keys costs several times
 * more per lookup, which is the inner loop of encoding.
 */
export class MergeTable {
  private mask: number;
  private keyLeft: Int32Array;
  private keyRight: Int32Array;
  /** rank stored in each slot, -1 for an empty slot */
  private slotRank: Int32Array;
  private mergedByRank: Int32Array;
  private count = 0;

  constructor(expectedMerges = 16) {
    let cap = 16;
    while (cap < expectedMerges * 2) cap *= 2;
    this.mask = cap - 1;
    this.keyLeft = new Int32Array(cap);
    this.keyRight = new Int32Array(cap);
    this.slotRank = new Int32Array(cap).fill(-1);
    this.mergedByRank = new Int32Array(Math.max(16, expectedMerges));
  }

  /** Number of merges (ranks are 0..size-1). */
  get size(): number {
    return this.count;
  }

  private static hash(left: number, right: number): number {
    let h = Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77);
    h ^= h >>> 15;
    return Math.imul(h, 0x2c1b3c6d);
  }

  /**
   * Appends the merge `left right -> merged` with the next rank.
   * @returns -1 when added, or the rank of an earlier merge of the same pair (nothing is added then).
   */
  add(left: number, right: number, merged: number): number {
    const existing = this.rank(left, right);
    if (existing >= 0) return existing;
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    this.insertSlot(left, right, this.count);
    if (this.count >= this.mergedByRank.length) {
      const next = new Int32Array(this.mergedByRank.length * 2);
      next.set(this.mergedByRank);
      this.mergedByRank = next;
    }
    this.mergedByRank[this.count] = merged;
    this.count++;
    return -1;
  }

  /** Rank of the pair, or -1 when the pair is not a merge. */
  rank(left: number, right: number): number {
    const mask = this.mask;
    let slot = MergeTable.hash(left, right) & mask;
    for (;;) {
      const r = this.slotRank[slot]!;
      if (r < 0) return -1;
      if (this.keyLeft[slot] === left && this.keyRight[slot] === right) return r;
      slot = (slot + 1) & mask;
    }
  }

  /** Id of the token produced by the merge of rank `rank`. */
  merged(rank: number): number {
    return this.mergedByRank[rank]!;
  }

  private insertSlot(left: number, right: number, rank: number): void {
    const mask = this.mask;
    let slot = MergeTable.hash(left, right) & mask;
    while (this.slotRank[slot]! >= 0) slot = (slot + 1) & mask;
    this.keyLeft[slot] = left;
    this.keyRight[slot] = right;
    this.slotRank[slot] = rank;
  }

  private grow(): void {
    const oldL = this.keyLeft;
    const oldR = this.keyRight;
    const oldRank = this.slotRank;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.keyLeft = new Int32Array(cap);
    this.keyRight = new Int32Array(cap);
    this.slotRank = new Int32Array(cap).fill(-1);
    for (let i = 0; i < oldRank.length; i++) {
      if (oldRank[i]! >= 0) this.insertSlot(oldL[i]!, oldR[i]!, oldRank[i]!);
    }
  }
}
