/**
 * The browser-bundle check (scripts/check-browser-bundles.mjs, run by `npm test` on every package's built browser
 * entry) on tensor's source: its browser entry holds no Node built-in, and a file that imports one is caught with
 * the module and the importer chain named (negative control).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const check = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'scripts/check-browser-bundles.mjs'), ...args], {
    cwd: root,
    encoding: 'utf8',
  });

describe('check-browser-bundles', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(root, 'packages/tensor/src/platform/.bundle-check-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes the browser entry of @relign/tensor (#platform resolves to the browser stand-in)', () => {
    const r = check('--source', 'tensor');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ok {3}@relign\/tensor/);
  });

  it('fails on a Node built-in, naming the module and the importer chain', async () => {
    await writeFile(join(dir, 'entry.ts'), "export * from './middle.js';\n");
    await writeFile(join(dir, 'middle.js'), "export { nodeFs } from '../node.js';\n");
    const r = check('--entry', join(dir, 'entry.ts'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/FAIL .*entry\.ts: its browser bundle still imports Node built-ins/);
    expect(r.stderr).toMatch(/node:fs\/promises.*<- +\S*entry\.ts -> \S*middle\.js -> \S*platform\/node\.ts/);
  });
});
