import { describe, expect, it } from 'vitest';
import { newRows } from './new-rows.js';

describe('newRows', () => {
  it('selects the rows sampled by the policy the update starts from (this iteration’s rollout)', () => {
    const batch = { batchSize: 6, policyVersions: Int32Array.from([1, 1, 3, 3, 2, 2]) };
    expect(newRows(batch, { policyVersion: 3 })).toEqual([2, 3]);
    expect(newRows(batch, { policyVersion: 4 })).toEqual([]);
  });

  it('counts a batch without per-row versions as all new', () => {
    const batch = { batchSize: 3 } as unknown as Parameters<typeof newRows>[0];
    expect(newRows(batch, { policyVersion: 0 })).toEqual([0, 1, 2]);
  });
});
