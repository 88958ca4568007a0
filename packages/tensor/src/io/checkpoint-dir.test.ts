import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_FORMAT_VERSION,
  latestCheckpoint,
  readCheckpointState,
  writeCheckpointDir,
} from './checkpoint-dir.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'relign-ckptdir-'));
  dirs.push(d);
  return d;
}

const save = (dir: string, step: number, keep?: number) =>
  writeCheckpointDir(
    dir,
    {
      kind: 'test',
      step,
      state: { step, note: 'x' },
      write: (tmp) => writeFile(join(tmp, 'weights.bin'), String(step)),
    },
    keep === undefined ? {} : { keep },
  );

describe('checkpoint folders', () => {
  it('writes a versioned state and pointer, keeps the newest 2 by default, and N when asked', async () => {
    const dir = await tempDir();
    for (const step of [1, 2, 3]) await save(dir, step);
    expect((await readdir(dir)).sort()).toEqual(['latest.json', 'step-00000002', 'step-00000003']);
    const latest = JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8'));
    expect(latest).toEqual({
      format: 'relign-checkpoint',
      version: CHECKPOINT_FORMAT_VERSION,
      checkpoint: 'step-00000003',
      step: 3,
    });
    const path = (await latestCheckpoint(dir))!;
    expect(path).toBe(join(dir, 'step-00000003'));
    const read = await readCheckpointState(path, { kind: 'test' });
    expect(read).toMatchObject({ version: 2, kind: 'test', step: 3, state: { step: 3, note: 'x' } });
    expect(await readFile(join(path, 'weights.bin'), 'utf8')).toBe('3');
    await save(dir, 4, 1);
    expect((await readdir(dir)).sort()).toEqual(['latest.json', 'step-00000004']);
    await expect(save(dir, 5, 0)).rejects.toThrow(/keep must be an integer >= 1/);
  });

  it('leaves the previous checkpoint in force when a save fails, and cleans up after it', async () => {
    const dir = await tempDir();
    await save(dir, 1);
    const before = await readFile(join(dir, 'latest.json'), 'utf8');
    await expect(
      writeCheckpointDir(dir, {
        kind: 'test',
        step: 2,
        state: {},
        write: async () => {
          throw new Error('disk full');
        },
      }),
    ).rejects.toThrow(/writing checkpoint .*step-00000002 failed: disk full/);
    expect(await readFile(join(dir, 'latest.json'), 'utf8')).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(['latest.json', 'step-00000001']);
    // A leftover of a crashed save (no rename happened) is removed by the next save.
    await mkdir(join(dir, 'step-00000003.tmp-abc123'));
    await save(dir, 3);
    expect((await readdir(dir)).sort()).toEqual(['latest.json', 'step-00000001', 'step-00000003']);
  });

  it('reads version 1 folders: the SFT / reward-model and the Trainer pointers and states', async () => {
    const dir = await tempDir();
    expect(await latestCheckpoint(join(dir, 'none'))).toBeUndefined();
    await mkdir(join(dir, 'step-00000120-a1b2c3'));
    await writeFile(join(dir, 'latest.json'), '{"checkpoint": "step-00000120-a1b2c3", "step": 120}');
    const lm = (await latestCheckpoint(dir))!;
    expect(lm).toBe(join(dir, 'step-00000120-a1b2c3'));
    await writeFile(join(lm, 'trainer_state.json'), '{"version": 1, "step": 120, "recentLosses": []}');
    expect(await readCheckpointState(lm)).toMatchObject({ version: 1, kind: 'causal-lm', step: 120 });
    await writeFile(join(lm, 'trainer_state.json'), '{"version": 1, "kind": "reward-model", "step": 120}');
    expect(await readCheckpointState(lm)).toMatchObject({ version: 1, kind: 'reward-model' });
    await writeFile(
      join(lm, 'trainer_state.json'),
      '{"format": "relign-trainer-state", "version": 1, "step": 7}',
    );
    const trainer = await readCheckpointState(lm);
    expect(trainer).toMatchObject({ version: 1, kind: 'trainer', step: 7 });
    expect(trainer.state).toMatchObject({ format: 'relign-trainer-state', version: 1 });
    await writeFile(
      join(dir, 'latest.json'),
      '{"format": "relign-trainer-checkpoint", "checkpoint": "step-00000012", "step": 12}',
    );
    expect(await latestCheckpoint(dir)).toBe(join(dir, 'step-00000012'));
    // A new save prunes the version 1 directories like its own.
    await save(dir, 200, 1);
    expect((await readdir(dir)).sort()).toEqual(['latest.json', 'step-00000200']);
  });

  it('refuses a damaged pointer or state, another kind, or a newer version, naming the file and field', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'latest.json'),
      '{"format": "relign-checkpoint", "version": 2, "checkpoint": "../etc"}',
    );
    await expect(latestCheckpoint(dir)).rejects.toThrow(
      /latest\.json is not a relign trainer checkpoint pointer: field 'checkpoint' must be the name of a step-N directory/,
    );
    await writeFile(
      join(dir, 'latest.json'),
      '{"format": "relign-checkpoint", "version": 3, "checkpoint": "step-1"}',
    );
    await expect(latestCheckpoint(dir)).rejects.toThrow(/format version 3 was written by a newer relign/);
    await writeFile(join(dir, 'latest.json'), '{"checkpoint": ');
    await expect(latestCheckpoint(dir)).rejects.toThrow(/latest\.json is not valid JSON/);

    const path = await save(dir, 1);
    await expect(readCheckpointState(path, { kind: 'reward-model' })).rejects.toThrow(
      /trainer_state\.json: this is a 'test' checkpoint, not a 'reward-model' one/,
    );
    const file = join(path, 'trainer_state.json');
    const good = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...good, step: '1' }));
    await expect(readCheckpointState(path)).rejects.toThrow(
      /trainer_state\.json: field 'step' must be an integer >= 0/,
    );
    await writeFile(file, JSON.stringify({ ...good, state: [] }));
    await expect(readCheckpointState(path)).rejects.toThrow(/field 'state' must be an object/);
    await writeFile(file, JSON.stringify({ ...good, version: 9 }));
    await expect(readCheckpointState(path)).rejects.toThrow(/format version 9 was written by a newer relign/);
    await writeFile(file, JSON.stringify({ format: 'something-else' }));
    await expect(readCheckpointState(path)).rejects.toThrow(
      /field 'format' must be "relign-checkpoint-state"/,
    );
    await rm(file);
    await expect(readCheckpointState(path)).rejects.toThrow(/cannot read .*trainer_state\.json/);
  });
});
