/**
 * The reference log-prob cache of offline DPO. The reference is frozen, so `S_ref(y_w)` and `S_ref(y_l)` of
 * every pair (docs/algorithms.md §3.1) are computed once — one forward pass over the data set instead of one per step and
 * epoch, and 8 bytes per pair instead of a second model in the training step — and reused by every epoch and
 * run on the same data.
 *
 * Entries are keyed by a fingerprint of the reference's configuration and weights and of the tokenized
 * pairs; a change of either gives a new key, and the stale entry is replaced (invalidated), in memory and on
 * disk. Each named slot (e.g. `'train'`, `'eval'`) holds one entry.
 */
import type { CausalLM } from '@relign/lm';
import type { TokenizedPair } from '@relign/reward-model';
import { readSafetensors, writeSafetensors, createSha256, nodeFs, nodePath } from '@relign/tensor';
import { modelFingerprint, pairsFingerprint } from './fingerprint.js';
import { sequenceLogprobSums } from './sequence-logprobs.js';

// File access through @relign/tensor: node:fs in Node.js, a stand-in that rejects in a browser bundle.
const { mkdir } = nodeFs;
const { join } = nodePath;

/** Reference sums of a data set, one per pair. */
export interface ReferenceLogprobs {
  /** The cache key: SHA-256 of the reference fingerprint and the data fingerprint. */
  key: string;
  /** `[N]` `S_ref(y_w)` per pair. */
  chosen: Float32Array;
  /** `[N]` `S_ref(y_l)` per pair. */
  rejected: Float32Array;
}

/** Where {@link ReferenceLogprobCache.get} found the values. */
export type ReferenceSource = 'memory' | 'disk' | 'computed';

export interface ReferenceCacheOptions {
  /** Also keep entries on disk, one safetensors file per slot (`<slot>.reference-logprobs.safetensors`). */
  dir?: string;
}

export interface ReferenceLookupOptions {
  /** Padding id of the collated batches (does not change the values). */
  padId: number;
  /** Sequences per reference forward pass on a miss. Default 32. */
  batchSize?: number;
  /** The entry's slot. Default `'train'`. */
  slot?: string;
}

export interface ReferenceLookup {
  logprobs: ReferenceLogprobs;
  source: ReferenceSource;
  /** Seconds spent (fingerprinting, and reading or computing). */
  seconds: number;
}

const FORMAT = 'relign-dpo-reference-logprobs';
const VERSION = '1';

/**
 * The key of a (reference, data) combination: the reference's full-weight fingerprint and the pairs'.
 */
export async function referenceCacheKey(
  reference: CausalLM,
  pairs: readonly TokenizedPair[],
): Promise<string> {
  return createSha256()
    .update(`${FORMAT}/${VERSION};`)
    .update(await modelFingerprint(reference))
    .update(pairsFingerprint(pairs))
    .digest('hex');
}

/**
 * `S_ref` of both sides of every pair, computed with the reference (no gradient): chosen and rejected
 * sequences of `batchSize / 2` pairs share each forward pass.
 */
export async function computeReferenceLogprobs(
  reference: CausalLM,
  pairs: readonly TokenizedPair[],
  { padId, batchSize = 32 }: { padId: number; batchSize?: number },
): Promise<Omit<ReferenceLogprobs, 'key'>> {
  const examples = pairs.flatMap((p) => [p.chosen, p.rejected]);
  const sums = await sequenceLogprobSums(reference, examples, {
    padId,
    batchSize: Math.max(2, batchSize - (batchSize % 2)),
  });
  const chosen = new Float32Array(pairs.length);
  const rejected = new Float32Array(pairs.length);
  for (let i = 0; i < pairs.length; i++) {
    chosen[i] = sums[2 * i]!;
    rejected[i] = sums[2 * i + 1]!;
  }
  return { chosen, rejected };
}

/** Reference log-prob cache, in memory and optionally on disk (see the module comment). */
export class ReferenceLogprobCache {
  readonly dir: string | undefined;
  private readonly slots = new Map<string, ReferenceLogprobs>();

  constructor(options: ReferenceCacheOptions = {}) {
    if (options.dir !== undefined && (typeof options.dir !== 'string' || options.dir === '')) {
      throw new Error('ReferenceLogprobCache: options.dir must be a non-empty directory path.');
    }
    this.dir = options.dir;
  }

  /** The file that holds `slot` on disk (undefined without a `dir`). */
  path(slot = 'train'): string | undefined {
    return this.dir === undefined ? undefined : join(this.dir, `${slot}.reference-logprobs.safetensors`);
  }

  /**
   * The reference sums of `pairs`: from memory when the slot's key matches, else from disk when the file's
   * key matches, else computed (and stored in both, replacing the slot's stale entry).
   *
   * @throws Error on an invalid slot name, or a cache file that exists but cannot be parsed.
   */
  async get(
    reference: CausalLM,
    pairs: readonly TokenizedPair[],
    options: ReferenceLookupOptions,
  ): Promise<ReferenceLookup> {
    const { padId, batchSize = 32, slot = 'train' } = options;
    if (!/^[\w.-]+$/.test(slot))
      throw new Error(
        `ReferenceLogprobCache.get: slot must be a simple name ([A-Za-z0-9_.-]), got ${JSON.stringify(slot)}.`,
      );
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(
        `ReferenceLogprobCache.get: batchSize must be an integer >= 1, got ${String(batchSize)}.`,
      );
    }
    const t0 = performance.now();
    const seconds = (): number => (performance.now() - t0) / 1000;
    const key = await referenceCacheKey(reference, pairs);
    const inMemory = this.slots.get(slot);
    if (inMemory?.key === key) return { logprobs: inMemory, source: 'memory', seconds: seconds() };

    const file = this.path(slot);
    if (file !== undefined) {
      const onDisk = await readEntry(file, pairs.length);
      if (onDisk?.key === key) {
        this.slots.set(slot, onDisk);
        return { logprobs: onDisk, source: 'disk', seconds: seconds() };
      }
    }
    const logprobs: ReferenceLogprobs = {
      key,
      ...(await computeReferenceLogprobs(reference, pairs, { padId, batchSize })),
    };
    this.slots.set(slot, logprobs);
    if (file !== undefined) {
      await mkdir(this.dir!, { recursive: true });
      await writeSafetensors(
        file,
        {
          chosen: { dtype: 'float32', shape: [pairs.length], data: logprobs.chosen },
          rejected: { dtype: 'float32', shape: [pairs.length], data: logprobs.rejected },
        },
        { format: FORMAT, version: VERSION, key, pairs: String(pairs.length) },
      );
    }
    return { logprobs, source: 'computed', seconds: seconds() };
  }

  /** Forgets the in-memory entries (files on disk stay). */
  clear(): void {
    this.slots.clear();
  }
}

/** A cache file's entry, or undefined when there is none (or it is of another format or size). */
async function readEntry(file: string, n: number): Promise<ReferenceLogprobs | undefined> {
  let parsed;
  try {
    parsed = await readSafetensors(file);
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'ENOENT') return undefined;
    throw new Error(
      `ReferenceLogprobCache: cannot read ${file} (${(err as Error).message}); delete it to recompute.`,
      { cause: err },
    );
  }
  const { metadata, tensors } = parsed;
  const chosen = tensors.get('chosen');
  const rejected = tensors.get('rejected');
  if (metadata.format !== FORMAT || metadata.version !== VERSION || typeof metadata.key !== 'string')
    return undefined;
  if (!(chosen?.data instanceof Float32Array) || !(rejected?.data instanceof Float32Array)) return undefined;
  if (chosen.data.length !== n || rejected.data.length !== n) return undefined;
  return { key: metadata.key, chosen: chosen.data, rejected: rejected.data };
}
