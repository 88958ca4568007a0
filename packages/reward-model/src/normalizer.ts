/**
 * Reward processing of PPO-max (docs/algorithms.md §2.3): running-moments scaling or normalisation, then clipping, with
 * statistics that are saved next to the reward model (`reward_stats.json`) and restored on load.
 */
import {
  RUNNING_MOMENTS_EPS,
  RunningMoments,
  writeFileAtomic,
  type BatchMoments,
  type RunningMomentsState,
  nodeFs,
} from '@relign/tensor';
import { checkScores, type RewardFunction } from './reward-function.js';

// File access through @relign/tensor: node:fs in Node.js, a stand-in that rejects in a browser bundle.
const { readFile } = nodeFs;

/** The file that holds a normaliser inside a reward-model directory. */
export const REWARD_STATS_FILE = 'reward_stats.json';

/** Options of {@link RewardNormalizer} (MOSS-RLHF's flags, docs/algorithms.md §2.3 and §2.11). */
export interface RewardNormalizerOptions {
  /** `r ← r / σ` (`use_reward_scaling`; on in the released PPO-max scripts). Default true. */
  scale?: boolean;
  /** `r ← (r − μ) / σ` (`use_reward_norm`); when set it replaces `scale`. Default false. */
  normalize?: boolean;
  /** `r ← clip(r, −clip, clip)` (`use_reward_clip` with `reward_clip`, e.g. 10). Default: no clipping. */
  clip?: number;
  /**
   * `'after-scaling'` (default, PPO-max §2.3: scale/normalise, then clip) or `'before-scaling'` (the P3O
   * authors' pipeline, docs/algorithms.md §1.7: clip raw scores, merge the clipped scores into the moments, then scale).
   */
  clipOrder?: 'after-scaling' | 'before-scaling';
}

/** {@link RewardNormalizerOptions} with defaults filled in (as saved). */
export interface ResolvedNormalizerOptions {
  scale: boolean;
  normalize: boolean;
  clip: number | null;
  clipOrder: 'after-scaling' | 'before-scaling';
}

/** The JSON in `reward_stats.json`. */
export interface RewardNormalizerState {
  version: 1;
  options: ResolvedNormalizerOptions;
  moments: RunningMomentsState;
}

function resolveOptions(o: RewardNormalizerOptions, fn: string): ResolvedNormalizerOptions {
  if (o === null || typeof o !== 'object') throw new TypeError(`${fn}: options must be an object.`);
  const { scale = true, normalize = false, clip, clipOrder = 'after-scaling' } = o;
  if (typeof scale !== 'boolean') throw new TypeError(`${fn}: options.scale must be a boolean.`);
  if (typeof normalize !== 'boolean') throw new TypeError(`${fn}: options.normalize must be a boolean.`);
  if (
    clip !== undefined &&
    clip !== null &&
    !(typeof clip === 'number' && clip > 0 && Number.isFinite(clip))
  ) {
    throw new Error(
      `${fn}: options.clip must be a finite number > 0 (or omitted for no clipping), got ${String(clip)}.`,
    );
  }
  if (clipOrder !== 'after-scaling' && clipOrder !== 'before-scaling') {
    throw new Error(
      `${fn}: options.clipOrder must be 'after-scaling' or 'before-scaling', got ${JSON.stringify(clipOrder)}.`,
    );
  }
  return { scale, normalize, clip: clip ?? null, clipOrder };
}

/**
 * Running reward statistics and the transform they drive.
 *
 * `process(scores)` first merges the batch into the running moments (the state is updated **before** use,
 * docs/algorithms.md §2.3), then applies `clip(scale(r))` (or `scale(clip(r))` with `clipOrder: 'before-scaling'`).
 * `update` and `apply` are the two halves, for callers who collect statistics on other values: for P3O the
 * translation-invariant choice is to update with pairwise differences `r1 − r2` and only scale (docs/algorithms.md §1.7's
 * caveat: a std of raw scores includes between-prompt variance).
 *
 * σ is the running unbiased std plus float32 eps (TRL); before any data σ is 1, so the transform is the
 * identity apart from clipping.
 */
export class RewardNormalizer {
  readonly options: ResolvedNormalizerOptions;
  #moments: RunningMoments;

  constructor(options: RewardNormalizerOptions = {}, moments?: RunningMoments) {
    this.options = resolveOptions(options, 'RewardNormalizer');
    this.#moments = moments ?? new RunningMoments();
  }

  /** The running moments (μ, σ, count). */
  get moments(): RunningMoments {
    return this.#moments;
  }

  /** Running mean μ. */
  get mean(): number {
    return this.#moments.mean;
  }

  /** Running unbiased std σ (1 before two values were seen). */
  get std(): number {
    return this.#moments.std;
  }

  /**
   * Merges a batch into the running moments (values are clipped first with `clipOrder: 'before-scaling'`).
   * @throws Error naming the row when a value is not finite (one NaN would poison the statistics forever).
   */
  update(values: ArrayLike<number>): BatchMoments {
    const xs = checkScores(values, values?.length ?? 0, 'RewardNormalizer.update');
    if (xs.length === 0)
      throw new Error('RewardNormalizer.update: values is empty; pass at least one score.');
    const clipped = this.options.clipOrder === 'before-scaling' ? Array.from(xs, (x) => this.#clip(x)) : xs;
    return this.#moments.update(Array.from(clipped));
  }

  /** The transform with the current statistics, no update. @returns new `[B]` float32 values. */
  apply(values: ArrayLike<number>): Float32Array {
    const xs = checkScores(values, values?.length ?? 0, 'RewardNormalizer.apply');
    const { scale, normalize, clipOrder } = this.options;
    const shift = normalize ? this.#moments.mean : 0;
    // TRL divides by σ + finfo(float32).eps; RunningMoments.scale/normalize do the same.
    const div = normalize || scale ? this.#moments.std + RUNNING_MOMENTS_EPS : 1;
    const out = new Float32Array(xs.length);
    for (let i = 0; i < xs.length; i++) {
      let r = xs[i]!;
      if (clipOrder === 'before-scaling') r = this.#clip(r);
      r = (r - shift) / div;
      if (clipOrder === 'after-scaling') r = this.#clip(r);
      out[i] = r;
    }
    return out;
  }

  /** `update(values)` then `apply(values)`: what a rollout does with each batch of scores (docs/algorithms.md §2.3). */
  process(values: ArrayLike<number>): Float32Array {
    this.update(values);
    return this.apply(values);
  }

  #clip(r: number): number {
    const c = this.options.clip;
    return c === null ? r : Math.min(Math.max(r, -c), c);
  }

  /** Options and moments as plain JSON (the content of `reward_stats.json`). */
  toJSON(): RewardNormalizerState {
    return { version: 1, options: { ...this.options }, moments: this.#moments.toJSON() };
  }

  /** Restores a state from {@link toJSON} (object or JSON string), validating every field. */
  static fromJSON(
    json: RewardNormalizerState | string,
    source = 'RewardNormalizer.fromJSON',
  ): RewardNormalizer {
    let obj: unknown = json;
    if (typeof json === 'string') {
      try {
        obj = JSON.parse(json);
      } catch (err) {
        throw new Error(`${source}: not valid JSON (${(err as Error).message}).`);
      }
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new Error(`${source}: expected an object {version, options, moments}.`);
    }
    const o = obj as Record<string, unknown>;
    if (o.version !== 1) {
      throw new Error(
        `${source}: unsupported version ${JSON.stringify(o.version)} (this release reads version 1).`,
      );
    }
    const opts = o.options as Record<string, unknown> | undefined;
    if (opts === null || typeof opts !== 'object') throw new Error(`${source}: field "options" is missing.`);
    let moments: RunningMoments;
    try {
      moments = RunningMoments.fromJSON(o.moments as RunningMomentsState);
    } catch (err) {
      throw new Error(`${source}: field "moments": ${(err as Error).message}`, { cause: err });
    }
    const clip = opts.clip;
    return new RewardNormalizer(
      {
        ...(opts as RewardNormalizerOptions),
        ...(clip === null ? { clip: undefined } : {}),
      },
      moments,
    );
  }

  /** Writes the state atomically to `path` (JSON). */
  async save(path: string): Promise<void> {
    await writeFileAtomic(path, JSON.stringify(this.toJSON(), null, 2) + '\n');
  }

  /** Reads a state written by {@link save}. @throws Error naming the file. */
  static async load(path: string): Promise<RewardNormalizer> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`RewardNormalizer.load: cannot read ${path} (${(err as Error).message}).`, {
        cause: err,
      });
    }
    return RewardNormalizer.fromJSON(text, path);
  }
}

/**
 * A reward function whose scores go through `normalizer` (by default `process`: statistics updated with
 * each batch, as at rollout time; `{ update: false }` only applies the saved statistics, e.g. for eval).
 */
export function normalizedReward(
  fn: RewardFunction,
  normalizer: RewardNormalizer,
  { update = true, name }: { update?: boolean; name?: string } = {},
): RewardFunction {
  if (typeof fn?.score !== 'function') throw new TypeError('normalizedReward: fn must be a RewardFunction.');
  if (!(normalizer instanceof RewardNormalizer)) {
    throw new TypeError('normalizedReward: normalizer must be a RewardNormalizer.');
  }
  return {
    name: name ?? `normalized(${fn.name})`,
    inputKind: fn.inputKind,
    async score(prompts, responses, options) {
      const raw = await fn.score(prompts, responses, options);
      if (raw.length === 0) return raw;
      return update ? normalizer.process(raw) : normalizer.apply(raw);
    },
  };
}
