/**
 * Metrics of the training loop, with stable names (docs/algorithms.md §4.9), and where they go: events and a JSONL file.
 *
 * | name                         | meaning                                                                 |
 * | ---------------------------- | ----------------------------------------------------------------------- |
 * | `reward/mean`, `reward/std`  | raw reward-function scores of the rollout (std: population, ÷B)         |
 * | `reward/running_mean`, `reward/running_std` | the same over every rollout so far (checkpointed)        |
 * | `objective/kl`               | batch mean of per-sequence Σ_t k1 = Σ (ℓ_old − ℓ_ref) (docs/algorithms.md §4.3, §4.7)  |
 * | `objective/kl_coef`          | β used by this iteration's update                                       |
 * | `objective/non_score_reward` | −β · `objective/kl`                                                      |
 * | `objective/rlhf_reward`      | `reward/mean` + `objective/non_score_reward`                             |
 * | `objective/entropy`          | mean per-sequence Σ_t −ℓ_old of the sampled tokens (docs/algorithms.md §4.9)           |
 * | `response/length_mean`       | mean response length in tokens (stop token included)                    |
 * | `response/eos_rate`          | fraction of responses that ended with a stop token                      |
 * | `time/rollout_s`             | generation + scoring + reference pass                                   |
 * | `time/update_s`              | `plugin.update`                                                         |
 * | `throughput/tokens_per_s`    | response tokens of the rollout ÷ (rollout + update seconds)             |
 * | `train/step`                 | iterations done (1 after the first)                                     |
 * | `train/skipped_steps_total`  | Σ of the plugin's `train/skipped_steps` over the run                    |
 * | `eval/*`                     | the same reward/KL/length statistics on the evaluation prompts          |
 * plus every metric the plugin returns (`loss/policy`, `policy/clipfrac`, `train/lr`, ...).
 */
import { writeFileAtomic, nodeFs, nodePath } from '@relign/tensor';
import type { RolloutBatch } from '@relign/rollout';
import { sequenceKl } from './kl.js';
import { sequenceSums } from './collect.js';
import type { Metrics } from './plugin.js';

// File access through @relign/tensor: node:fs in Node.js, a stand-in that rejects in a browser bundle.
const { appendFile, mkdir, readFile } = nodeFs;
const { dirname } = nodePath;

/** Reward, KL, entropy and length statistics of one scored rollout (metric names with `prefix`). */
export function rolloutMetrics(
  batch: RolloutBatch,
  rewards: Float32Array | Float64Array,
  refLogprobs: Float32Array | undefined,
  prefix = '',
): Metrics {
  const B = batch.batchSize;
  let sum = 0;
  for (const r of rewards) sum += r;
  const mean = sum / B;
  let sq = 0;
  for (const r of rewards) sq += (r - mean) ** 2;
  let lengths = 0;
  let eos = 0;
  for (let b = 0; b < B; b++) {
    lengths += batch.responseLengths[b]!;
    eos += batch.endedWithEos[b]!;
  }
  const logprobSums = sequenceSums(batch.logprobs, batch);
  let entropy = 0;
  for (const s of logprobSums) entropy -= s;
  const out: Metrics = {
    [`${prefix}reward/mean`]: mean,
    [`${prefix}reward/std`]: Math.sqrt(sq / B),
    [`${prefix}objective/entropy`]: entropy / B,
    [`${prefix}response/length_mean`]: lengths / B,
    [`${prefix}response/eos_rate`]: eos / B,
  };
  if (refLogprobs) out[`${prefix}objective/kl`] = meanKl(batch, refLogprobs);
  return out;
}

/**
 * `objective/kl`: the batch mean of per-sequence k1 sums between the rollout's log-probs and the reference's
 * (the one shared measurement of docs/algorithms.md §4.7 / §4.9, via {@link sequenceKl}).
 */
export function meanKl(batch: RolloutBatch, refLogprobs: Float32Array): number {
  const kl = sequenceKl(batch.logprobs, refLogprobs, batch.responseLengths, batch.responseWidth);
  let s = 0;
  for (const v of kl) s += v;
  return s / kl.length;
}

/** Running mean and variance (Welford / Chan merge), serialisable for checkpoints. */
export class RunningStats {
  constructor(
    public count = 0,
    public mean = 0,
    /** Σ (x − mean)². */
    public m2 = 0,
  ) {}

  /** Merges a batch of values (Chan et al. parallel update; exact for any split). */
  push(values: ArrayLike<number>): void {
    const n = values.length;
    if (n === 0) return;
    let s = 0;
    for (let i = 0; i < n; i++) s += values[i]!;
    const mb = s / n;
    let m2b = 0;
    for (let i = 0; i < n; i++) m2b += (values[i]! - mb) ** 2;
    const total = this.count + n;
    const delta = mb - this.mean;
    this.mean += (delta * n) / total;
    this.m2 += m2b + (delta * delta * this.count * n) / total;
    this.count = total;
  }

  /** Population standard deviation (0 before any value). */
  get std(): number {
    return this.count > 0 ? Math.sqrt(this.m2 / this.count) : 0;
  }

  toJSON(): { count: number; mean: number; m2: number } {
    return { count: this.count, mean: this.mean, m2: this.m2 };
  }

  static fromJSON(s: { count: number; mean: number; m2: number }): RunningStats {
    for (const k of ['count', 'mean', 'm2'] as const) {
      if (typeof s?.[k] !== 'number' || !Number.isFinite(s[k])) {
        throw new Error(
          `RunningStats.fromJSON: '${k}' must be a finite number, got ${JSON.stringify(s?.[k])}.`,
        );
      }
    }
    return new RunningStats(s.count, s.mean, s.m2);
  }
}

/**
 * Appends one JSON object per step to a file (JSON Lines). Non-finite numbers are written as `null`
 * (JSON has no NaN), so a reader sees the key with no value rather than a missing key.
 */
export class MetricsLog {
  private ready: Promise<void> | undefined;

  constructor(readonly path: string) {}

  /**
   * Prepares the file for a run resumed at `step`: lines of later steps (written by the interrupted run
   * after its last checkpoint) are removed, so every step appears once. A new run (`step` 0) truncates.
   */
  async start(step: number): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    let kept = '';
    if (step > 0) {
      const text = await readFile(this.path, 'utf8').catch(() => '');
      kept = text
        .split('\n')
        .filter((line) => {
          if (line.trim() === '') return false;
          try {
            const s = (JSON.parse(line) as Record<string, unknown>)['train/step'];
            return typeof s === 'number' && s <= step;
          } catch {
            return false;
          }
        })
        .map((line) => line + '\n')
        .join('');
    }
    await writeFileAtomic(this.path, kept);
  }

  async write(metrics: Metrics): Promise<void> {
    const line = JSON.stringify(metrics, (_k, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? null : v,
    );
    await appendFile(this.path, line + '\n');
  }
}
