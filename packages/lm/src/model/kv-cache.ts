/**
 * Key/value cache for incremental decoding.
 *
 * Ownership: a KVCache owns its tensors. `CausalLM.forward(ids, { cache })` never modifies or disposes the
 * cache it is given; it returns a NEW cache holding the extended keys/values (tfjs tensors are immutable,
 * so extending copies). The caller disposes both: typically
 *
 * ```ts
 * let { logits, cache } = model.forward(prompt, { attentionMask, useCache: true });
 * for (...) {
 *   const next = model.forward(token, { cache });
 *   cache!.dispose(); // the old one
 *   cache = next.cache;
 * }
 * cache!.dispose();
 * ```
 *
 * Keeping the old cache alive is allowed (e.g. to decode several continuations from one prefilled prompt).
 */
import * as tf from '@tensorflow/tfjs-core';

export class KVCache {
  private disposedFlag = false;

  /**
   * Built by `CausalLM.forward`; not meant to be constructed by hand.
   * @param keys per layer [B, Hkv, Tpast, Dh] (Hkv: the key/value heads; fewer than the query heads under
   *   grouped-query attention, so the cache is smaller by that factor). @param values per layer, same shape.
   * @param mask [B, Tpast] float32 0/1: which cached positions are real tokens (padding is 0).
   * @param nextPosition [B] float32: the position id the next real token of each row gets.
   * @param dense true when no mask or position ids were ever given: no padding, and every row's positions
   *   are 0..Tpast-1 (lets the model skip position bookkeeping).
   */
  constructor(
    readonly keys: readonly tf.Tensor4D[],
    readonly values: readonly tf.Tensor4D[],
    readonly mask: tf.Tensor2D,
    readonly nextPosition: tf.Tensor1D,
    readonly dense = false,
  ) {
    if (keys.length !== values.length) {
      throw new Error(`KVCache: ${keys.length} key tensors but ${values.length} value tensors`);
    }
  }

  /** Cached sequence length Tpast (padding included). */
  get length(): number {
    return this.mask.shape[1];
  }

  /** Batch size B. */
  get batchSize(): number {
    return this.mask.shape[0];
  }

  /** Number of layers cached. */
  get numLayers(): number {
    return this.keys.length;
  }

  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /**
   * A new cache holding only the given rows, in that order (the batch compaction of a decode loop: rows
   * that have finished stop costing compute). Each row's keys, values, mask and next position are copied
   * unchanged, so decoding a row from the gathered cache gives the same numbers as from this one. This
   * cache is neither modified nor disposed.
   * @param rows indices into [0, batchSize), at least one.
   */
  gather(rows: readonly number[]): KVCache {
    if (this.disposedFlag) throw new Error('KVCache.gather: the cache was disposed');
    const B = this.batchSize;
    if (rows.length === 0) throw new Error('KVCache.gather: rows is empty; keep at least one row');
    for (const r of rows) {
      if (!Number.isInteger(r) || r < 0 || r >= B) {
        throw new Error(`KVCache.gather: row ${String(r)} is not an index in [0, ${B}) (the batch size)`);
      }
    }
    const out = tf.tidy(() => {
      const idx = tf.tensor1d(Array.from(rows), 'int32');
      return {
        keys: this.keys.map((k) => tf.gather(k, idx, 0) as tf.Tensor4D),
        values: this.values.map((v) => tf.gather(v, idx, 0) as tf.Tensor4D),
        mask: tf.gather(this.mask, idx, 0) as tf.Tensor2D,
        next: tf.gather(this.nextPosition, idx, 0) as tf.Tensor1D,
      };
    });
    return new KVCache(out.keys, out.values, out.mask, out.next, this.dense);
  }

  /** Frees every tensor of the cache. Idempotent. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    for (const t of this.keys) t.dispose();
    for (const t of this.values) t.dispose();
    this.mask.dispose();
    this.nextPosition.dispose();
  }
}
