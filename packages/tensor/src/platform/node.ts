/**
 * The Node.js side of relign's file access (package.json `imports` maps `#platform` here by default and to
 * ./browser.ts under the `browser` condition). Every file read or write in the relign packages goes through
 * these objects, so a browser bundle holds no `node:` import and a file API called there fails with a clear error.
 */
// The module object (not named imports): tests replace `open`/`rename` on it with `vi.spyOn`, and calls made as
// `nodeFs.open(...)` see the replacement.
import fsp from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { homedir, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Sha256 } from './sha256.js';

/** `node:fs/promises`. */
export const nodeFs: typeof fsp = fsp;
/** The parts of `node:path` relign uses. */
export const nodePath = { basename, dirname, isAbsolute, join, relative, resolve };
/** The parts of `node:os`, `node:url` and `node:module` relign uses. */
export const nodeOs = { homedir, totalmem };
export const nodeUrl = { fileURLToPath, pathToFileURL };
export const nodeModule = { createRequire };
/** `node:crypto`'s hashes. */
export const nodeCrypto = { createHash };
/** `n` random bytes as hex (temporary file and directory names). */
export function randomHex(n: number): string {
  return randomBytes(n).toString('hex');
}
/** True where the file system is available (Node.js); false in a browser bundle. */
export const HAS_FILE_SYSTEM: boolean = true;
/** An incremental SHA-256 (node:crypto's; the browser side has the same digests in plain JavaScript). */
export function createSha256(): Sha256 {
  return createHash('sha256');
}
