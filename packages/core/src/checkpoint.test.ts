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
