/**
 * Atomic file replacement: checkpoints and other artefacts must never be observed half-written, even if
 * the process dies mid-write or the disk fills up.
 */
// The default import (the module object) rather than named imports: tests replace `open`/`rename` on it
// with `vi.spyOn` to simulate a disk failing mid-write, which an ES namespace does not allow.
// `#platform` gives `node:fs/promises` itself in Node.js and a stand-in that rejects in a browser bundle.
import type { FileHandle } from 'node:fs/promises';
import { nodeFs as fsp, nodePath, randomHex } from '../platform/index.js';

const { basename, dirname, join } = nodePath;

/**
 * Writes `data` to `path` atomically: the bytes go to a temporary file in the same directory (so the
 * final `rename` stays on one file system and is atomic), which is fsynced and then renamed over `path`.
 * Readers see either the old file or the complete new one, never a partial file. On failure the
 * temporary file is removed, an existing `path` is left untouched, and the error (whose `code`, e.g.
 * `ENOENT` when the directory is missing, is kept) names `path`.
 *
 * @param path destination file; its directory must exist.
 * @param data bytes, or a string written as UTF-8.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  // Hidden, unique per process and call, so concurrent writers to the same path never share a temp file.
  const tmp = join(dir, `.${basename(path)}.${globalThis.process?.pid ?? 0}.${randomHex(6)}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(tmp, 'wx');
    await handle.writeFile(data);
    // Flush the data before the rename: otherwise a crash could leave the new name on empty blocks.
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, path);
  } catch (err) {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    const wrapped = new Error(
      `writeFileAtomic: could not write ${path}: ${e.message}` +
        (e.code === 'ENOENT' ? ` (does the directory ${dir} exist?)` : ''),
      { cause: err },
    ) as NodeJS.ErrnoException;
    if (e.code !== undefined) wrapped.code = e.code;
    throw wrapped;
  }
  // Make the rename itself durable. Directories cannot be opened/fsynced on some platforms (Windows):
  // the file is already complete and in place, so that is not an error.
  try {
    const d = await fsp.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}
