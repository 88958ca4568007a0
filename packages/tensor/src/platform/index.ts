// `#platform` (package.json `imports`): ./node.ts in Node.js, ./browser.ts under the `browser` condition.
import type fsp from 'node:fs/promises';
import { nodeFs as platformFs } from '#platform';

export {
  nodePath,
  randomHex,
  HAS_FILE_SYSTEM,
  nodeOs,
  nodeUrl,
  nodeModule,
  nodeCrypto,
  createSha256,
} from '#platform';
export type { Sha256 } from './sha256.js';
export { createMemoryFileSystem, type MemoryFileSystem } from './memory-fs.js';

let current: typeof fsp = platformFs;

/**
 * `node:fs/promises` as relign uses it: every file read and write of the relign packages goes through this
 * object, which forwards each call to the file system in use: Node's own by default (a stand-in that rejects in a
 * browser), or the one given to {@link useFileSystem}.
 */
export const nodeFs: typeof fsp = new Proxy({} as typeof fsp, {
  get:
    (_target, name) =>
    // Looked up per call, so functions taken out of nodeFs at import time follow useFileSystem too.
    (...args: unknown[]) =>
      (current[name as keyof typeof fsp] as (...a: unknown[]) => unknown)(...args),
});

/**
 * Replaces the file system of every relign package (`undefined` restores the default): e.g.
 * `useFileSystem(createMemoryFileSystem().fs)` lets a browser page give the Trainer a `checkpointDir` and a
 * `metricsPath`, whose files then live in memory (or, with an implementation of your own, in IndexedDB).
 */
export function useFileSystem(fs: typeof fsp | undefined): void {
  current = fs ?? platformFs;
}
