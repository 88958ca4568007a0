/**
 * The metrics of a GRPO update that are not the loss's: TRL's reward, group and completion-length statistics of
 * the rollout (docs/algorithms.md §8.2 "Metrics"). Means over optimizer steps use core's `MetricMean`.
 */
import type { Metrics } from '@relign/core';
import type { RolloutMinibatch } from '@relign/rollout';

/**
 * `reward`, `reward_std` (mean within-group std, unbiased), `frac_reward_zero_std` (groups with one reward value,
 * hence no signal), `completions/*` (lengths in tokens; `clipped_ratio`: cut at `maxNewTokens`), named as TRL's.
 */
export function rolloutMetrics(batch: RolloutMinibatch, G: number): Metrics {
  const rewards = batch.rewards;
  let stdSum = 0;
  let zeroStd = 0;
  const groups = batch.batchSize / G;
  for (let g = 0; g < batch.batchSize; g += G) {
    let mean = 0;
    for (let j = g; j < g + G; j++) mean += rewards[j]!;
    mean /= G;
    let ss = 0;
    for (let j = g; j < g + G; j++) ss += (rewards[j]! - mean) ** 2;
    const std = Math.sqrt(ss / (G - 1));
    stdSum += std;
    if (std === 0) zeroStd += 1;
  }
  const lengths = Array.from(batch.responseLengths);
  const truncated = Array.from(batch.truncated).filter((t) => t === 1).length;
  return {
    reward: rewards.reduce((a, r) => a + r, 0) / rewards.length,
    reward_std: stdSum / groups,
    frac_reward_zero_std: zeroStd / groups,
    'completions/mean_length': lengths.reduce((a, l) => a + l, 0) / lengths.length,
    'completions/min_length': Math.min(...lengths),
    'completions/max_length': Math.max(...lengths),
    'completions/clipped_ratio': truncated / lengths.length,
  };
}
