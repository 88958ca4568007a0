/**
 * Key/value cache for incremental decoding.
 *
 * Ownership: a KVCache owns its tensors. `CausalLM.forward(ids, { cache })` never modifies or disposes the
 * cache it is given; it returns a NEW cache holding the extended keys/values. The caller disposes both:
 * typically
 *
 * ```ts
 * let { logits, cache } = model.forward(prompt, { attentionMask, useCache: true, cacheCapacity });
 * for (...) {
 *   const next = model.forward(token, { cache });
 *   cache!.dispose(); // the old one
 *   cache = next.cache;
 * }
 * cache!.dispose();
 * ```
 *
 * Keeping the old cache alive is allowed (e.g. to decode several continuations from one prefilled prompt).
 *
 * Storage. On most backends each forward concatenates the step's keys/values to the past ones (tfjs tensors
 * are immutable), an O(T) copy per step and layer. On wasm (with relign's kernels, and no gradient tape
 * recording) the cache instead lives in a {@link KVStore}: per layer one [B, Hkv, capacity, Dh] tensor
 * for the keys and one for the values, preallocated (`cacheCapacity`, or doubling as decoding goes), into
 * which each step writes its rows IN PLACE; attention then reads the first `length` positions of that
 * buffer without copying it. One store is shared by the chain of caches decoded from each other. The
 * in-place write is safe because:
 * - the store's tensors are created by this module (a pad or a gather: fresh memory) and never leave it:
 *   no op result aliases them (attention and `gather` only read them; the `keys`/`values` a user sees are
 *   slices of the written prefix, i.e. copies), so no other tensor sees the write;
 * - a position is written only at the store's `frontier` (the first never-written position), and the
 *   frontier only grows: every cache of the chain has `length <= frontier` and reads only positions below
 *   its length, so what any cache reads never changes. Extending a cache whose length is below the
 *   frontier (a second continuation of one cache) copies its prefix into a new store instead;
 * - it is never done while a gradient tape records (then the concat path is used), so no tensor saved
 *   for a backward pass can alias the buffer.
 */
import * as tf from '@tensorflow/tfjs-core';
import { inPlaceWritesAvailable, writeRowsInPlace } from '@relign/tensor';
import type { StepContext } from './backbone.js';

/**
 * Preallocated keys and values, shared (reference-counted) by a chain of caches; see the file comment
 * for why its in-place writes are safe. Internal to @relign/lm.
 */
export class KVStore {
  private refs = 0;

  /**
   * @param keys per layer [B, Hkv, capacity, Dh], owned from now on. @param values likewise.
   * @param frontier positions [0, frontier) hold data; the rest was never written.
   */
  constructor(
    readonly keys: readonly tf.Tensor4D[],
    readonly values: readonly tf.Tensor4D[],
    public frontier: number,
  ) {}

  get capacity(): number {
    return this.keys[0]?.shape[2] ?? 0;
  }

  retain(): this {
    this.refs++;
    return this;
  }

  /** Drops one reference; the last one frees the tensors. */
  release(): void {
    if (--this.refs === 0) tf.dispose([...this.keys, ...this.values]);
  }
}

/** One layer's keys/values for attention: the first `length` positions of `keys`/`values` are used. */
export interface LayerKV {
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
  length: number;
  /** Whether they continue a past cache (a decode step). */
  overCache: boolean;
}

/** How one forward extends the cache on the store path (see {@link planKV}). */
export interface KVPlan {
  /** The past's store takes this step's rows in place. */
  inPlace: boolean;
  /** Capacity of the store the new cache uses (the past's when in place, else a new one). */
  capacity: number;
}

export class KVCache {
  private disposedFlag = false;
  private readonly ownKeys: readonly tf.Tensor4D[];
  private readonly ownValues: readonly tf.Tensor4D[];
  private views: { keys: tf.Tensor4D[]; values: tf.Tensor4D[] } | undefined;

  /**
   * Built by `CausalLM.forward`; not meant to be constructed by hand.
   * @param keys per layer [B, Hkv, Tpast, Dh] (Hkv: the key/value heads; fewer than the query heads under
   *   grouped-query attention, so the cache is smaller by that factor). @param values per layer, same shape.
   *   Both empty when `store` is given.
   * @param mask [B, Tpast] float32 0/1: which cached positions are real tokens (padding is 0).
   * @param nextPosition [B] float32: the position id the next real token of each row gets.
   * @param dense true when no mask or position ids were ever given: no padding, and every row's positions
   *   are 0..Tpast-1 (lets the model skip position bookkeeping).
   * @param store preallocated storage holding the keys/values (the first Tpast positions); this cache takes
   *   one reference to it.
   */
  constructor(
    keys: readonly tf.Tensor4D[],
    values: readonly tf.Tensor4D[],
    readonly mask: tf.Tensor2D,
    readonly nextPosition: tf.Tensor1D,
    readonly dense = false,
    private readonly store?: KVStore,
  ) {
    if (keys.length !== values.length) {
      throw new Error(`KVCache: ${keys.length} key tensors but ${values.length} value tensors`);
    }
    this.ownKeys = keys;
    this.ownValues = values;
    store?.retain();
  }

  /**
   * Per layer [B, Hkv, Tpast, Dh]. With preallocated storage (wasm), copies of the used positions made on
   * first access and freed with the cache.
   */
  get keys(): readonly tf.Tensor4D[] {
    return this.store ? this.materialized().keys : this.ownKeys;
  }

  /** Per layer [B, Hkv, Tpast, Dh]; see {@link keys}. */
  get values(): readonly tf.Tensor4D[] {
    return this.store ? this.materialized().values : this.ownValues;
  }

  /** Cached sequence length Tpast (padding included). */
  get length(): number {
    return this.mask.shape[1];
  }

  /** Positions this cache can hold before the next forward must copy it (its length, unless preallocated). */
  get capacity(): number {
    return this.store?.capacity ?? this.length;
  }

  /** Batch size B. */
  get batchSize(): number {
    return this.mask.shape[0];
  }

  /** Number of layers cached. */
  get numLayers(): number {
    return this.store ? this.store.keys.length : this.ownKeys.length;
  }

  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /** Layer `i`'s keys/values as attention reads them (a store's buffers are not copied). */
  layer(i: number): LayerKV {
    const s = this.store;
    const [keys, values] = s ? [s.keys[i]!, s.values[i]!] : [this.ownKeys[i]!, this.ownValues[i]!];
    return { keys, values, length: this.length, overCache: true };
  }

  /** The store this cache can extend in place by `T` positions, if any. */
  storeToExtend(T: number): KVStore | undefined {
    const s = this.store;
    return s && s.frontier === this.length && this.length + T <= s.capacity ? s : undefined;
  }

  private materialized(): { keys: tf.Tensor4D[]; values: tf.Tensor4D[] } {
    if (this.disposedFlag) throw new Error('KVCache: the cache was disposed');
    if (this.views === undefined) {
      const s = this.store!;
      const prefix = (t: tf.Tensor4D) => tf.keep(prefixOf(t, this.length));
      this.views = { keys: s.keys.map(prefix), values: s.values.map(prefix) };
    }
    return this.views;
  }

  /**
   * A new cache holding only the given rows, in that order (the batch compaction of a decode loop: rows
   * that have finished stop costing compute). Each row's keys, values, mask and next position are copied
   * unchanged, so decoding a row from the gathered cache gives the same numbers as from this one; a
   * preallocated cache's capacity is kept. This cache is neither modified nor disposed.
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
    const s = this.store;
    const out = tf.tidy(() => {
      const idx = tf.tensor1d(Array.from(rows), 'int32');
      const pick = <T extends tf.Tensor>(t: T) => tf.gather(t, idx, 0) as T;
      return {
        keys: (s ? s.keys : this.ownKeys).map(pick),
        values: (s ? s.values : this.ownValues).map(pick),
        mask: pick(this.mask),
        next: pick(this.nextPosition),
      };
    });
    if (!s) return new KVCache(out.keys, out.values, out.mask, out.next, this.dense);
    // The gathered buffers are fresh memory: a new store, written up to this cache's length.
    return new KVCache(
      [],
      [],
      out.mask,
      out.next,
      this.dense,
      new KVStore(out.keys, out.values, this.length),
    );
  }

  /** Frees every tensor of the cache (a shared store once its last cache is gone). Idempotent. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    for (const t of this.ownKeys) t.dispose();
    for (const t of this.ownValues) t.dispose();
    if (this.views) tf.dispose([...this.views.keys, ...this.views.values]);
    this.store?.release();
    this.mask.dispose();
    this.nextPosition.dispose();
  }
}

/** The first `length` positions of a [B, H, capacity, Dh] tensor. */
function prefixOf(t: tf.Tensor4D, length: number): tf.Tensor4D {
  const [B, H, , Dh] = t.shape;
  return tf.slice(t, [0, 0, 0, 0], [B, H, length, Dh]);
}

/**
 * Decides whether a forward over `T` new tokens uses preallocated storage (the wasm backend with relign's
 * kernels, no gradient tape recording) and how: in place in the past's store when it has room and this
 * cache is at its frontier, else a new store of `capacityHint` positions (a prefill) or, when extending a
 * cache without room, double its length (at most `maxPositions` unless the cache is already longer).
 * A prefill without a hint keeps its exact keys/values (no copy; the first decode step makes the store).
 * @returns undefined for the concat path.
 */
export function planKV(
  past: KVCache | undefined,
  T: number,
  capacityHint: number | undefined,
  maxPositions: number,
): KVPlan | undefined {
  if (tf.engine().state.gradientDepth > 0 || !inPlaceWritesAvailable()) return undefined;
  const store = past?.storeToExtend(T);
  if (store) return { inPlace: true, capacity: store.capacity };
  const length = (past?.length ?? 0) + T;
  let capacity: number;
  if (capacityHint !== undefined) capacity = Math.max(capacityHint, length);
  else if (past === undefined) return undefined;
  else capacity = Math.max(length, Math.min(Math.max(2 * length, length + 16), maxPositions));
  return capacity > length ? { inPlace: false, capacity } : undefined;
}

/**
 * Where a fused decode block (which writes its keys/values itself, e.g. @relign/tensor's
 * `fusedGpt2DecodeBlock`) puts layer `i`'s rows: the past's store when this forward extends it in place,
 * else undefined (run the layer op by op with {@link extendKV}). The rows go at position `ctx.tPast`.
 */
export function inPlaceLayer(
  ctx: StepContext,
  i: number,
): { keys: tf.Tensor4D; values: tf.Tensor4D } | undefined {
  if (!ctx.kvPlan?.inPlace) return undefined;
  const s = ctx.past!.storeToExtend(ctx.T)!;
  return { keys: s.keys[i]!, values: s.values[i]! };
}

/**
 * Extends layer `i`'s cache with this step's keys/values [B, Hkv, T, Dh] (inside the forward's tidy) and
 * returns what attention reads: the past's store with the rows written in place, or the concatenation
 * (whose copy, padded to the plan's capacity, becomes the new store; without a plan, the new cache).
 */
export function extendKV(ctx: StepContext, i: number, k: tf.Tensor4D, v: tf.Tensor4D): LayerKV {
  const { past, kvPlan: plan } = ctx;
  const length = ctx.tPast + ctx.T;
  if (plan?.inPlace) {
    const s = past!.storeToExtend(ctx.T)!;
    writeRowsInPlace(s.keys[i]!, k, ctx.tPast);
    writeRowsInPlace(s.values[i]!, v, ctx.tPast);
    return { keys: s.keys[i]!, values: s.values[i]!, length, overCache: true };
  }
  let keys = k;
  let values = v;
  if (past !== undefined) {
    const p = past.layer(i);
    const fit = (t: tf.Tensor4D) => (t.shape[2] === p.length ? t : prefixOf(t, p.length));
    keys = tf.concat([fit(p.keys), k], 2);
    values = tf.concat([fit(p.values), v], 2);
  }
  if (plan) {
    const pad: [number, number][] = [
      [0, 0],
      [0, 0],
      [0, plan.capacity - length],
      [0, 0],
    ];
    ctx.keys.push(tf.pad(keys, pad));
    ctx.values.push(tf.pad(values, pad));
  } else if (ctx.wantCache) {
    ctx.keys.push(keys);
    ctx.values.push(values);
  }
  return { keys, values, length, overCache: past !== undefined };
}

/**
 * The cache a forward returns, from the per-layer tensors `extendKV` collected: plain, in the past's store
 * (now written up to `length`), or in a new store.
 */
export function finishKV(
  plan: KVPlan | undefined,
  past: KVCache | undefined,
  keys: tf.Tensor4D[],
  values: tf.Tensor4D[],
  mask: tf.Tensor2D,
  next: tf.Tensor1D,
  dense: boolean,
): KVCache {
  if (plan === undefined) return new KVCache(keys, values, mask, next, dense);
  const length = mask.shape[1];
  let store: KVStore;
  if (plan.inPlace) {
    store = past!.storeToExtend(length - past!.length)!;
    store.frontier = length;
  } else {
    store = new KVStore(keys, values, length);
  }
  return new KVCache([], [], mask, next, dense, store);
}
