/**
 * Which rows of the batch handed to `update` were collected in this iteration. With `bufferCapacity >
 * promptsPerIteration` the Trainer hands the whole replay buffer: this iteration's rollout plus older groups
 * handed again. Running statistics (reward normalisers, P3O's `pairwise-std`) must take each group once, when
 * it is new, or a group is counted once per iteration it stays in the buffer.
 */
import type { RolloutMinibatch } from '@relign/rollout';
import type { UpdateContext } from './plugin.js';

/**
 * The rows of `batch` sampled by the policy this update starts from (`batch.policyVersions[b] ===
 * context.policyVersion`): the Trainer stamps each rollout with the version of the policy that sampled it and
 * counts one version per iteration, so these are exactly the rows collected in this iteration. A batch without
 * per-row versions counts as all new.
 *
 * @returns row indices, ascending.
 */
export function newRows(
  batch: Pick<RolloutMinibatch, 'batchSize' | 'policyVersions'>,
  context: Pick<UpdateContext, 'policyVersion'>,
): number[] {
  const versions = batch.policyVersions as Int32Array | undefined;
  const all = Array.from({ length: batch.batchSize }, (_, b) => b);
  if (versions === undefined || versions.length !== batch.batchSize) return all;
  return all.filter((b) => versions[b] === context.policyVersion);
}
