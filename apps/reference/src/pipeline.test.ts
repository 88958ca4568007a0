import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConfig } from './config/load.js';
import type { StageContext } from './context.js';
import { prepareRunDir, runStage } from './pipeline.js';
import { silentProgress } from './progress.js';
import { ForeignRunDirError } from './run-ownership.js';

function write(root: string, rel: string, text = 'x'): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), text);
}

describe('prepareRunDir', () => {
  const root = mkdtempSync(join(tmpdir(), 'relign-pipeline-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("a fresh run clears the earlier run's outputs but never the user's files in the run directory", async () => {
    const dir = join(root, 'run');
    write(dir, 'report/thesis.tex', 'my thesis');
    write(dir, 'train/data.csv', 'a,b');
    const cfg = buildConfig({ preset: 'tiny', flags: new Map([['runDir', dir]]) });
    await expect(prepareRunDir(cfg, false)).rejects.toBeInstanceOf(ForeignRunDirError);

    const run = await prepareRunDir(cfg, false, { force: true });
    const ctx: StageContext = {
      cfg,
      run,
      progress: silentProgress(),
      signal: new AbortController().signal,
      resume: false,
    };
    // A stage that writes where the user's files are.
    await runStage(ctx, {
      name: 'fake',
      run: async () => {
        write(dir, 'report/report.html');
        write(dir, 'train/p3o-v2/result.json');
        write(dir, 'train/p3o-v2/checkpoints/step-00000001/model.safetensors');
      },
    });
    expect(existsSync(join(dir, 'stages.json'))).toBe(true);

    // The next fresh run (no --force needed: the directory is relign's now).
    await prepareRunDir(cfg, false);
    expect(readFileSync(join(dir, 'report', 'thesis.tex'), 'utf8')).toBe('my thesis');
    expect(readFileSync(join(dir, 'train', 'data.csv'), 'utf8')).toBe('a,b');
    for (const gone of ['stages.json', 'report/report.html', 'train/p3o-v2']) {
      expect(existsSync(join(dir, gone)), gone).toBe(false);
    }
    expect(existsSync(join(dir, 'config.json'))).toBe(true);
  });
});
