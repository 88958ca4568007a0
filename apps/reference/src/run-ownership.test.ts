import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ForeignRunDirError, RUN_MARKER, RunOwnership } from './run-ownership.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'relign-own-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function write(root: string, rel: string, text = 'x'): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), text);
}

/** A directory holding a user's files where relign writes its outputs. */
function foreignDir(): string {
  const root = tempDir();
  write(root, 'report/thesis.tex', 'my thesis');
  write(root, 'train/data.csv', 'a,b');
  return root;
}

describe('RunOwnership', () => {
  it('refuses a non-empty directory without the marker, naming it and --force; takes a new or empty one', async () => {
    const root = foreignDir();
    const err = await RunOwnership.claim(root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForeignRunDirError);
    expect((err as Error).message).toContain(root);
    expect((err as Error).message).toContain('--force');
    expect(existsSync(join(root, RUN_MARKER))).toBe(false);

    const fresh = join(tempDir(), 'new', 'run');
    await RunOwnership.claim(fresh);
    expect(JSON.parse(readFileSync(join(fresh, RUN_MARKER), 'utf8'))).toMatchObject({
      relign: 'run-directory',
      created: [],
    });
  });

  it('with --force removes only what relign created, never the files that were there', async () => {
    const root = foreignDir();
    const own = await RunOwnership.claim(root, { force: true });
    await own.track(async () => {
      write(root, 'report/report.html');
      write(root, 'train/p3o-v2/result.json');
      write(root, 'train/p3o-v2/checkpoints/step-00000001/model.safetensors');
      write(root, 'eval/sft.json');
    });
    expect(own.owns('report/report.html')).toBe(true);
    expect(own.owns('report/')).toBe(false); // it was there before

    // A later command reopens the directory from its marker.
    const again = await RunOwnership.claim(root);
    for (const top of ['report', 'train', 'eval']) await again.remove(top);
    expect(readFileSync(join(root, 'report', 'thesis.tex'), 'utf8')).toBe('my thesis');
    expect(readFileSync(join(root, 'train', 'data.csv'), 'utf8')).toBe('a,b');
    expect(existsSync(join(root, 'report', 'report.html'))).toBe(false);
    expect(existsSync(join(root, 'train', 'p3o-v2'))).toBe(false);
    expect(existsSync(join(root, 'eval'))).toBe(false); // relign made the folder: removed once empty
  });

  it('keeps a file the user put into a folder relign created', async () => {
    const root = tempDir();
    const own = await RunOwnership.claim(root);
    await own.track(async () => write(root, 'sft/checkpoints/step-1/model.safetensors'));
    write(root, 'sft/checkpoints/notes.txt', 'mine');
    await own.remove('sft');
    expect(readFileSync(join(root, 'sft', 'checkpoints', 'notes.txt'), 'utf8')).toBe('mine');
    expect(existsSync(join(root, 'sft', 'checkpoints', 'step-1'))).toBe(false);
  });

  it('after a crash mid-stage, counts what appeared since the stage started as relign’s', async () => {
    const root = foreignDir();
    await RunOwnership.claim(root, { force: true });
    // The marker as a killed process leaves it: a stage pending, with the listing from before it.
    writeFileSync(
      join(root, RUN_MARKER),
      JSON.stringify({
        relign: 'run-directory',
        version: 1,
        createdAt: '2024-01-01T00:00:00.000Z',
        created: [],
        pending: ['report/', 'report/thesis.tex', 'train/', 'train/data.csv'],
      }),
    );
    write(root, 'train/ppo-max/metrics.jsonl');
    const own = await RunOwnership.claim(root);
    await own.remove('train');
    expect(existsSync(join(root, 'train', 'ppo-max'))).toBe(false);
    expect(existsSync(join(root, 'train', 'data.csv'))).toBe(true);
    expect(JSON.parse(readFileSync(join(root, RUN_MARKER), 'utf8')).pending).toBeUndefined();
  });

  it('names the marker file when it is not valid', async () => {
    const root = tempDir();
    writeFileSync(join(root, RUN_MARKER), '{"relign": ');
    await expect(RunOwnership.claim(root)).rejects.toThrow(
      new RegExp(`${RUN_MARKER.replace('.', '\\.')} is not valid JSON.*--force`),
    );
    writeFileSync(join(root, RUN_MARKER), '{"created": 3}');
    await expect(RunOwnership.claim(root)).rejects.toThrow(/is not a relign run marker/);
  });
});
