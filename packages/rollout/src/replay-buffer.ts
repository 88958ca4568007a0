/**
 * Replay buffer of scored rollouts, stored by group: a prompt and its `responsesPerPrompt` responses
 * are added, evicted and drawn together, never split (pairwise optimizers such as P3O need both responses
 * of a prompt in the same minibatch, docs/algorithms.md §1.8, §1.8b).
 *
 * - Capacity counts groups; adding beyond it evicts the oldest groups (insertion order).
 * - `minibatches(n, rng)` visits every group once in a seeded random order, n groups per minibatch,
 *   each group's rows adjacent; a minibatch is a {@link RolloutBatch} (so `computeLogprobs` takes it)
 *   with the scores and each row's policy version.
 * - Every group keeps the version of the policy that sampled it: {@link ReplayBuffer.staleness}.
 * - `save(dir)` / `ReplayBuffer.load(dir)`: see `buffer-file.ts` for the format.
 */
import type { Rng } from '@relign/tensor';
import { validateRolloutBatch, type RolloutBatch } from './batch.js';
import type { SamplingOptions } from './options.js';
import { readBufferDir, writeBufferDir } from './buffer-file.js';

/** Scores of a batch's rows, added with it. */
export interface RolloutScores {
  /**
   * Per sequence `[B]`: the (processed) reward of each response. Must be finite. Kept in float64, so a
   * difference of two rewards is that of the numbers given (P3O's invariance to r + δ(x), docs/algorithms.md §1.10).
   */
  rewards: ArrayLike<number>;
  /** Per token `[B, Tr]` (layout of `batch.logprobs`): reference log-probs. Finite at valid positions. */
  refLogprobs?: ArrayLike<number>;
  /** Per token `[B, Tr]`: value-head outputs at rollout time (`computeValues`). Finite at valid positions. */
  values?: ArrayLike<number>;
}

/** A stored group: one prompt and its G responses, unpadded (each array holds exactly the valid tokens). */
export interface RolloutGroup {
  /** Insertion serial number, unique within the buffer (its group id in minibatches). */
  serial: number;
  /** Version of the policy that sampled the group. */
  policyVersion: number;
  /** Sampling options of the batch the group came from. */
  options: SamplingOptions;
  /** `[Lp]` prompt tokens. */
  promptTokens: Int32Array;
  /** G arrays `[len_j]` (stop token included). */
  responseTokens: Int32Array[];
  /** G arrays `[len_j]`: sampling log-probs. */
  logprobs: Float32Array[];
  /** G arrays `[len_j]` or absent. */
  refLogprobs?: Float32Array[];
  /** G arrays `[len_j]` or absent. */
  values?: Float32Array[];
  /** `[G]` rewards (float64: exactly as added). */
  rewards: Float64Array;
  /** `[G]` 0/1. */
  endedWithEos: Uint8Array;
  /** `[G]` 0/1. */
  truncated: Uint8Array;
}

/** A minibatch drawn from the buffer: a padded {@link RolloutBatch} plus scores. */
export interface RolloutMinibatch extends RolloutBatch {
  /** Per sequence `[B]`, float64 (exactly as added, see {@link RolloutScores.rewards}). */
  rewards: Float64Array;
  /** Per token `[B, Tr]`, 0 at padding; present when the buffer's groups have it. */
  refLogprobs?: Float32Array;
  /** Per token `[B, Tr]`, 0 at padding; present when the buffer's groups have it. */
  values?: Float32Array;
  /** Per sequence `[B]`: the policy version that sampled each row (`policyVersion` is their minimum). */
  policyVersions: Int32Array;
}

export interface ReplayBufferOptions {
  /** Most groups (prompts) held; the oldest are evicted beyond it. */
  capacity: number;
  /** Responses per prompt G of every group (2 for P3O / online DPO). */
  responsesPerPrompt: number;
}

/** Staleness of the buffer's groups relative to a current policy version. */
export interface Staleness {
  oldestVersion: number;
  newestVersion: number;
  /** `current − oldestVersion`. */
  maxStaleness: number;
  /** Mean of `current − policyVersion` over groups. */
  meanStaleness: number;
}

export interface MinibatchOptions {
  /** Skip a last minibatch smaller than requested. Default false. */
  dropLast?: boolean;
}

const MAX_INT32 = 2 ** 31 - 1;

export class ReplayBuffer {
  readonly capacity: number;
  readonly responsesPerPrompt: number;
  private store: RolloutGroup[] = [];
  private nextSerial = 0;

  constructor(options: ReplayBufferOptions) {
    const { capacity, responsesPerPrompt } = options ?? ({} as ReplayBufferOptions);
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new Error(
        `ReplayBuffer: options.capacity must be an integer >= 1 (groups), got ${String(capacity)}`,
      );
    }
    if (!Number.isSafeInteger(responsesPerPrompt) || responsesPerPrompt < 1) {
      throw new Error(
        `ReplayBuffer: options.responsesPerPrompt must be an integer >= 1, got ${String(responsesPerPrompt)}`,
      );
    }
    this.capacity = capacity;
    this.responsesPerPrompt = responsesPerPrompt;
  }

  /** Groups held. */
  get size(): number {
    return this.store.length;
  }

  /** Responses held (`size × responsesPerPrompt`). */
  get numResponses(): number {
    return this.store.length * this.responsesPerPrompt;
  }

  /** The groups, oldest first (a new array; treat the groups as read-only). */
  groups(): RolloutGroup[] {
    return this.store.slice();
  }

  /** Per group, oldest first: the policy version that sampled it. */
  policyVersions(): Int32Array {
    return Int32Array.from(this.store, (g) => g.policyVersion);
  }

  /** How old the held groups are at policy version `current`; null when the buffer is empty. */
  staleness(current: number): Staleness | null {
    if (!Number.isFinite(current))
      throw new Error(`ReplayBuffer.staleness: current must be a number, got ${current}`);
    if (this.store.length === 0) return null;
    let lo = Infinity;
    let hi = -Infinity;
    let sum = 0;
    for (const g of this.store) {
      lo = Math.min(lo, g.policyVersion);
      hi = Math.max(hi, g.policyVersion);
      sum += current - g.policyVersion;
    }
    return {
      oldestVersion: lo,
      newestVersion: hi,
      maxStaleness: current - lo,
      meanStaleness: sum / this.store.length,
    };
  }

  /** Removes every group (serial numbers keep increasing). */
  clear(): void {
    this.store = [];
  }

  /**
   * Adds a scored batch, group by group, then evicts the oldest groups beyond the capacity. The batch is
   * copied (later changes to it do not reach the buffer). Nothing is added if any check fails.
   *
   * @throws Error naming the field for: a group size other than `responsesPerPrompt`, a length beyond
   *   its token array, a non-finite reward/log-prob/value, a score array of the wrong size, score fields
   *   or a sampling distribution (temperature/topK/topP) that differ from the groups already held.
   */
  add(batch: RolloutBatch, scores: RolloutScores): { added: number; evicted: number } {
    const FN = 'ReplayBuffer.add';
    validateRolloutBatch(batch, FN);
    const G = this.responsesPerPrompt;
    if (batch.responsesPerPrompt !== G) {
      throw new Error(
        `${FN}: batch.responsesPerPrompt is ${batch.responsesPerPrompt} but this buffer holds groups of ` +
          `${G} responses (wrong group size)`,
      );
    }
    const { batchSize: B, responseWidth: Tr, promptWidth: Tp } = batch;
    if (scores === null || typeof scores !== 'object')
      throw new Error(`${FN}: scores {rewards, ...} are required`);
    const rewards = Float64Array.from(
      checkScoreArray(scores.rewards, 'rewards', B, `[B] = [${B}]`, FN, true),
    );
    const f32 = (a: ArrayLike<number>): Float32Array => Float32Array.from(a);
    const ref =
      scores.refLogprobs === undefined
        ? undefined
        : f32(
            checkScoreArray(scores.refLogprobs, 'refLogprobs', B * Tr, `[B, Tr] = [${B}, ${Tr}]`, FN, false),
          );
    const values =
      scores.values === undefined
        ? undefined
        : f32(checkScoreArray(scores.values, 'values', B * Tr, `[B, Tr] = [${B}, ${Tr}]`, FN, false));
    for (let b = 0; b < B; b++) {
      if (!Number.isFinite(rewards[b]!)) {
        throw new Error(
          `${FN}: scores.rewards[${b}] = ${rewards[b]} is not finite (NaN reward); fix the reward model output`,
        );
      }
      for (let t = 0; t < batch.responseLengths[b]!; t++) {
        for (const [name, arr] of [
          ['refLogprobs', ref],
          ['values', values],
        ] as const) {
          if (arr !== undefined && !Number.isFinite(arr[b * Tr + t]!)) {
            throw new Error(`${FN}: scores.${name}[${b}, ${t}] = ${arr[b * Tr + t]} is not finite`);
          }
        }
      }
    }
    if (batch.policyVersion > MAX_INT32) {
      throw new Error(`${FN}: batch.policyVersion ${batch.policyVersion} exceeds 2^31 − 1`);
    }
    const groups: RolloutGroup[] = [];
    for (let g = 0; g < B / G; g++) {
      const row0 = g * G;
      const lp = batch.promptLengths[row0]!;
      const prompt = batch.promptTokens.slice(row0 * Tp + Tp - lp, (row0 + 1) * Tp);
      for (let j = 1; j < G; j++) {
        const b = row0 + j;
        const same =
          batch.promptLengths[b] === lp &&
          batch.promptTokens.subarray(b * Tp + Tp - lp, (b + 1) * Tp).every((v, i) => v === prompt[i]);
        if (!same) {
          throw new Error(
            `${FN}: row ${b} has a different prompt from row ${row0} of the same group (groupIds[${b}])`,
          );
        }
      }
      const rows = Array.from({ length: G }, (_, j) => row0 + j);
      const cut = <T extends Int32Array | Float32Array>(a: T, b: number): T =>
        a.slice(b * Tr, b * Tr + batch.responseLengths[b]!) as T;
      const group: RolloutGroup = {
        serial: 0, // set on insertion
        policyVersion: batch.policyVersion,
        options: structuredClone(batch.options),
        promptTokens: prompt,
        responseTokens: rows.map((b) => cut(batch.responseTokens, b)),
        logprobs: rows.map((b) => cut(batch.logprobs, b)),
        rewards: Float64Array.from(rows, (b) => rewards[b]!),
        endedWithEos: Uint8Array.from(rows, (b) => batch.endedWithEos[b]!),
        truncated: Uint8Array.from(rows, (b) => batch.truncated[b]!),
      };
      if (ref) group.refLogprobs = rows.map((b) => cut(ref, b));
      if (values) group.values = rows.map((b) => cut(values, b));
      groups.push(group);
    }
    this.checkCompatible(groups, FN);
    return this.insert(groups);
  }

  /**
   * Minibatches of whole groups in a seeded random order: every group held when iteration starts is
   * visited exactly once (an epoch); rows of a group are adjacent. Mutating the buffer during iteration
   * does not change the epoch.
   *
   * @param groupsPerMinibatch groups per minibatch (rows = groups × responsesPerPrompt).
   * @param rng the shuffle stream (e.g. `createRng(seed).split()`); it advances.
   */
  *minibatches(
    groupsPerMinibatch: number,
    rng: Rng,
    { dropLast = false }: MinibatchOptions = {},
  ): Generator<RolloutMinibatch> {
    if (!Number.isSafeInteger(groupsPerMinibatch) || groupsPerMinibatch < 1) {
      throw new Error(
        `ReplayBuffer.minibatches: groupsPerMinibatch must be an integer >= 1, got ${String(groupsPerMinibatch)}`,
      );
    }
    if (rng === null || typeof rng !== 'object' || typeof rng.permutation !== 'function') {
      throw new Error('ReplayBuffer.minibatches: rng must be an Rng (createRng(seed) from @relign/tensor)');
    }
    const snapshot = this.store.slice();
    const order = rng.permutation(snapshot.length);
    for (let i = 0; i < order.length; i += groupsPerMinibatch) {
      const chunk = order.slice(i, i + groupsPerMinibatch);
      if (dropLast && chunk.length < groupsPerMinibatch) break;
      yield collateGroups(chunk.map((k) => snapshot[k]!));
    }
  }

  /** Writes the buffer to `dir` (created if needed); see `buffer-file.ts` for the format. */
  async save(dir: string): Promise<void> {
    await writeBufferDir(dir, {
      capacity: this.capacity,
      responsesPerPrompt: this.responsesPerPrompt,
      nextSerial: this.nextSerial,
      groups: this.store,
    });
  }

  /**
   * Reads a buffer written by {@link save}. Every group is validated as on `add`; with `vocabSize` (the
   * model's `vocab_size`) token ids must also be below it.
   * @throws Error naming the file and the field that is missing, inconsistent or out of range.
   */
  static async load(dir: string, options: { vocabSize?: number } = {}): Promise<ReplayBuffer> {
    const state = await readBufferDir(dir, options);
    const buffer = new ReplayBuffer({
      capacity: state.capacity,
      responsesPerPrompt: state.responsesPerPrompt,
    });
    const where = `ReplayBuffer.load(${dir})`;
    for (const g of state.groups) validateGroup(g, state.responsesPerPrompt, where);
    buffer.checkCompatible(state.groups, where);
    buffer.store = state.groups.slice();
    let maxSerial = -1;
    const serials = new Set<number>();
    for (const g of state.groups) {
      if (serials.has(g.serial)) throw new Error(`${where}: group serial ${g.serial} appears twice`);
      serials.add(g.serial);
      maxSerial = Math.max(maxSerial, g.serial);
    }
    if (state.nextSerial <= maxSerial) {
      throw new Error(
        `${where}: nextSerial ${state.nextSerial} is not above the largest group serial ${maxSerial}`,
      );
    }
    if (state.groups.length > state.capacity) {
      throw new Error(`${where}: ${state.groups.length} groups exceed the capacity ${state.capacity}`);
    }
    buffer.nextSerial = state.nextSerial;
    return buffer;
  }

  private insert(groups: RolloutGroup[]): { added: number; evicted: number } {
    for (const g of groups) {
      if (this.nextSerial > MAX_INT32)
        throw new Error('ReplayBuffer: more than 2^31 groups added; create a new buffer');
      g.serial = this.nextSerial++;
      this.store.push(g);
    }
    const evicted = Math.max(0, this.store.length - this.capacity);
    if (evicted > 0) this.store.splice(0, evicted);
    return { added: groups.length, evicted };
  }

  /** Same score fields and same sampled distribution as the groups held (or the first of `groups`). */
  private checkCompatible(groups: RolloutGroup[], fn: string): void {
    const ref = this.store[0] ?? groups[0];
    if (ref === undefined) return;
    for (const g of groups) {
      for (const field of ['refLogprobs', 'values'] as const) {
        if ((g[field] === undefined) !== (ref[field] === undefined)) {
          throw new Error(
            `${fn}: scores.${field} is ${g[field] === undefined ? 'missing' : 'present'} but ` +
              `${ref[field] === undefined ? 'absent from' : 'present in'} the groups already held; ` +
              'every group of a buffer carries the same score fields',
          );
        }
      }
      for (const field of ['temperature', 'topK', 'topP'] as const) {
        if (g.options[field] !== ref.options[field]) {
          throw new Error(
            `${fn}: batch.options.${field} = ${g.options[field]} differs from ${ref.options[field]} of the groups ` +
              'already held; one buffer holds samples of one distribution (clear it when changing sampling)',
          );
        }
      }
    }
  }
}

function checkScoreArray(
  a: ArrayLike<number> | undefined,
  field: string,
  length: number,
  shape: string,
  fn: string,
  required: boolean,
): ArrayLike<number> {
  if (a === undefined || a === null || typeof a.length !== 'number') {
    if (!required) throw new Error(`${fn}: scores.${field} must be an array ${shape}`);
    throw new Error(`${fn}: scores.${field} ${shape} is required`);
  }
  if (a.length !== length) {
    throw new Error(`${fn}: scores.${field} has ${a.length} entries; its shape ${shape} needs ${length}`);
  }
  return a;
}

/** Checks a stored group's invariants (used on load). */
export function validateGroup(g: RolloutGroup, G: number, fn: string): void {
  const at = `group ${g.serial}`;
  if (g.promptTokens.length < 1) throw new Error(`${fn}: ${at} has an empty prompt`);
  for (const [name, arr] of [
    ['responseTokens', g.responseTokens],
    ['logprobs', g.logprobs],
    ['refLogprobs', g.refLogprobs],
    ['values', g.values],
  ] as const) {
    if (arr !== undefined && arr.length !== G) {
      throw new Error(`${fn}: ${at} has ${arr.length} ${name} arrays, expected ${G} (wrong group size)`);
    }
  }
  for (const [name, arr] of [
    ['rewards', g.rewards],
    ['endedWithEos', g.endedWithEos],
    ['truncated', g.truncated],
  ] as const) {
    if (arr.length !== G)
      throw new Error(`${fn}: ${at} has ${arr.length} ${name}, expected ${G} (wrong group size)`);
  }
  for (let j = 0; j < G; j++) {
    const len = g.responseTokens[j]!.length;
    if (len < 1) throw new Error(`${fn}: ${at} response ${j} is empty`);
    for (const [name, arr] of [
      ['logprobs', g.logprobs],
      ['refLogprobs', g.refLogprobs],
      ['values', g.values],
    ] as const) {
      if (arr === undefined) continue;
      const a = arr[j]!;
      if (a.length !== len) {
        throw new Error(`${fn}: ${at} response ${j}: ${name} has ${a.length} entries for ${len} tokens`);
      }
      for (let t = 0; t < len; t++) {
        if (!Number.isFinite(a[t]!))
          throw new Error(`${fn}: ${at} response ${j}: ${name}[${t}] = ${a[t]} is not finite`);
      }
    }
    if (!Number.isFinite(g.rewards[j]!)) {
      throw new Error(`${fn}: ${at} response ${j}: reward ${g.rewards[j]} is not finite (NaN reward)`);
    }
  }
}

/**
 * Pads groups into one {@link RolloutMinibatch}: prompts left-padded, responses right-padded (with the
 * first group's pad id), group ids = the groups' serials, `options` those of the first group (with
 * `maxNewTokens` the largest), `policyVersion` the oldest row's.
 */
export function collateGroups(groups: readonly RolloutGroup[]): RolloutMinibatch {
  const first = groups[0];
  if (first === undefined) throw new Error('collateGroups: no groups');
  const G = first.responseTokens.length;
  const B = groups.length * G;
  let Tp = 1;
  let Tr = 1;
  let maxNew = first.options.maxNewTokens;
  for (const g of groups) {
    Tp = Math.max(Tp, g.promptTokens.length);
    for (const r of g.responseTokens) Tr = Math.max(Tr, r.length);
    maxNew = Math.max(maxNew, g.options.maxNewTokens);
  }
  const pad = first.options.padTokenId;
  const out: RolloutMinibatch = {
    batchSize: B,
    responsesPerPrompt: G,
    promptWidth: Tp,
    responseWidth: Tr,
    promptTokens: new Int32Array(B * Tp).fill(pad),
    promptLengths: new Int32Array(B),
    responseTokens: new Int32Array(B * Tr).fill(pad),
    responseLengths: new Int32Array(B),
    logprobs: new Float32Array(B * Tr),
    endedWithEos: new Uint8Array(B),
    truncated: new Uint8Array(B),
    groupIds: new Int32Array(B),
    options: { ...structuredClone(first.options), maxNewTokens: maxNew },
    policyVersion: Infinity,
    rewards: new Float64Array(B),
    policyVersions: new Int32Array(B),
  };
  if (first.refLogprobs) out.refLogprobs = new Float32Array(B * Tr);
  if (first.values) out.values = new Float32Array(B * Tr);
  groups.forEach((g, k) => {
    const Lp = g.promptTokens.length;
    for (let j = 0; j < G; j++) {
      const b = k * G + j;
      out.promptTokens.set(g.promptTokens, b * Tp + Tp - Lp);
      out.promptLengths[b] = Lp;
      out.responseTokens.set(g.responseTokens[j]!, b * Tr);
      out.responseLengths[b] = g.responseTokens[j]!.length;
      out.logprobs.set(g.logprobs[j]!, b * Tr);
      if (out.refLogprobs && g.refLogprobs) out.refLogprobs.set(g.refLogprobs[j]!, b * Tr);
      if (out.values && g.values) out.values.set(g.values[j]!, b * Tr);
      out.endedWithEos[b] = g.endedWithEos[j]!;
      out.truncated[b] = g.truncated[j]!;
      out.groupIds[b] = g.serial;
      out.rewards[b] = g.rewards[j]!;
      out.policyVersions[b] = g.policyVersion;
    }
    out.policyVersion = Math.min(out.policyVersion, g.policyVersion);
  });
  return out;
}
