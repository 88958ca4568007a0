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
   * @param keys per layer [B, H, Tpast, Dh]. @param values per layer [B, H, Tpast, Dh].
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
