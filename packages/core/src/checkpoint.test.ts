import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { latestCheckpoint, readCheckpoint } from './checkpoint.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('checkpoint pointers', () => {
  it('finds no checkpoint in a new directory and rejects a malformed latest.json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relign-ckpt-'));
    dirs.push(dir);
    expect(await latestCheckpoint(join(dir, 'missing'))).toBeUndefined();
    await writeFile(
      join(dir, 'latest.json'),
      '{"format": "relign-trainer-checkpoint", "checkpoint": "../etc"}',
    );
    await expect(latestCheckpoint(dir)).rejects.toThrow('is not a relign trainer checkpoint pointer');
    await writeFile(
      join(dir, 'latest.json'),
      '{"format": "relign-trainer-checkpoint", "checkpoint": "step-00000004", "step": 4}',
    );
    expect(await latestCheckpoint(dir)).toBe(join(dir, 'step-00000004'));
    await expect(readCheckpoint(join(dir, 'step-00000004'))).rejects.toThrow(
      /cannot read .*trainer_state\.json/,
    );
  });
});

describe('trainer_state.json validation', () => {
  const good = {
    format: 'relign-trainer-state',
    version: 1,
    step: 3,
    policyVersion: 3,
    samplesSeen: 12,
    numPrompts: 8,
    seed: 7,
    rng: { algorithm: 'xoshiro128**', version: 1, s: [1, 2, 3, 4] },
    kl: { kind: 'adaptive', value: 0.2, target: 6, horizon: 10000 },
    plugin: { name: 'p3o-v2', config: { lr: 1e-5 } },
    rewardStats: { count: 12, mean: 0.5, m2: 1.5 },
    skippedTotal: 0,
    referenceFingerprint: 'abc',
  };

  it.each([
    ['plugin', 'p3o-v2', /field 'plugin' is invalid \(Invalid type: Expected Object but received "p3o-v2"\)/],
    ['step', '3', /field 'step' is invalid \(Invalid type: Expected number but received "3"\)/],
    ['step', -1, /field 'step' is invalid/],
    ['rng', { ...good.rng, s: [1, 2, 3] }, /field 'rng.s.3' is invalid/],
    ['kl', { kind: 'fixed', value: 'x' }, /field 'kl.value' is invalid/],
    ['rewardStats', { count: 1, mean: 0 }, /field 'rewardStats.m2' is invalid/],
  ])('names the file and the field of a wrong %s', async (field, value, message) => {
    const dir = await mkdtemp(join(tmpdir(), 'relign-ckpt-'));
    dirs.push(dir);
    const file = join(dir, 'trainer_state.json');
    await writeFile(file, JSON.stringify({ ...good, [field]: value }));
    const err = await readCheckpoint(dir).then(
      () => new Error('no error'),
      (e: Error) => e,
    );
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`Trainer: ${file}: field`);
  });

  it('accepts a valid state (and then reads the rest of the checkpoint)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relign-ckpt-'));
    dirs.push(dir);
    await writeFile(join(dir, 'trainer_state.json'), JSON.stringify(good));
    // Past the state: the next missing file is plugin.json.
    await expect(readCheckpoint(dir)).rejects.toThrow(/plugin\.json/);
  });
});
