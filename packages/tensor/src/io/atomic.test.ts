import fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from './atomic.js';

let dir: string;

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'relign-atomic-'));
});

afterEach(async () => {
  vi.restoreAllMocks();
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes bytes and strings, and replaces an existing file', async () => {
    const p = join(dir, 'a.bin');
    await writeFileAtomic(p, new Uint8Array([1, 2, 3, 250]));
    expect([...(await fsp.readFile(p))]).toEqual([1, 2, 3, 250]);
    await writeFileAtomic(p, 'héllo');
    expect(await fsp.readFile(p, 'utf8')).toBe('héllo');
    expect(await fsp.readdir(dir)).toEqual(['a.bin']); // no temp file left behind
  });

  it('fails with ENOENT naming the path when the directory is missing, creating nothing', async () => {
    const p = join(dir, 'missing', 'x.bin');
    const err = await writeFileAtomic(p, 'data').catch((e: NodeJS.ErrnoException) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect((err as Error).message).toContain(p);
    expect((err as Error).message).toContain('does the directory');
    expect(await fsp.readdir(dir)).toEqual([]);
  });

  it('removes its temp file when the final rename fails (target is a directory)', async () => {
    const p = join(dir, 'target');
    await fsp.mkdir(p);
    await fsp.writeFile(join(p, 'inner'), 'keep');
    await expect(writeFileAtomic(p, 'data')).rejects.toThrow(p);
    expect(await fsp.readdir(dir)).toEqual(['target']);
    expect(await fsp.readFile(join(p, 'inner'), 'utf8')).toBe('keep');
  });

  it('leaves an existing file untouched and no temp file when the disk fails mid-write', async () => {
    const p = join(dir, 'ckpt.bin');
    await fsp.writeFile(p, 'old contents');
    const realOpen = fsp.open.bind(fsp);
    let tempPath = '';
    vi.spyOn(fsp, 'open').mockImplementation((async (path: string, flags?: string) => {
      const handle = await realOpen(path, flags);
      tempPath = String(path);
      // Simulate ENOSPC after half of the bytes reached the temp file.
      handle.writeFile = (async (data: Uint8Array | string) => {
        const bytes = typeof data === 'string' ? Buffer.from(data) : data;
        await handle.write(bytes.subarray(0, bytes.length >> 1));
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }) as typeof handle.writeFile;
      return handle;
    }) as unknown as typeof fsp.open);

    const err = await writeFileAtomic(p, 'new contents that do not fit').catch(
      (e: NodeJS.ErrnoException) => e,
    );
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect((err as Error).message).toContain(p);
    // The temp file was really created in the target's directory, then cleaned up.
    expect(tempPath.startsWith(join(dir, '.ckpt.bin.'))).toBe(true);
    expect(await fsp.readdir(dir)).toEqual(['ckpt.bin']);
    expect(await fsp.readFile(p, 'utf8')).toBe('old contents');
  });

  it('concurrent writers to one path leave exactly one complete version', async () => {
    const p = join(dir, 'c.txt');
    const versions = Array.from({ length: 8 }, (_, i) => `version ${i} `.repeat(1000 + i));
    await Promise.all(versions.map((v) => writeFileAtomic(p, v)));
    expect(versions).toContain(await fsp.readFile(p, 'utf8'));
    expect(await fsp.readdir(dir)).toEqual(['c.txt']);
  });
});
