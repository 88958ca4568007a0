/**
 * The browser side of relign's file access (`#platform` under the `browser` condition; see ./node.ts). There is
 * no file system: every `nodeFs` call rejects with an error that names the call and the browser alternative.
 * Paths are still joined (POSIX style), so code that only builds names keeps working.
 */
import type fsp from 'node:fs/promises';
import { JsSha256, type Sha256 } from './sha256.js';

function noFileSystemError(call: string): Error {
  return new Error(
    `relign: ${call} needs a file system, which a browser does not have. In the browser, load models and ` +
      'tokenizers from URLs, bytes or Files (loadCausalLM, loadBpeTokenizer, HfTokenizer.fromJSON, loadBaseModel ' +
      'of @relign/base-model), and leave file options (checkpointDir, metricsPath, outDir) unset or give relign a ' +
      'file system first: useFileSystem(createMemoryFileSystem().fs) from @relign/tensor.',
  );
}

/** Stands in for `node:fs/promises`: each function rejects with {@link noFileSystemError}. */
export const nodeFs = new Proxy({} as typeof fsp, {
  get: (_target, name) => () => Promise.reject(noFileSystemError(`fs.${String(name)}()`)),
});

const trimSlashes = (s: string) => s.replace(/\/+$/, '');
/** POSIX `join`, `dirname` and `basename` for names only. */
export const nodePath = {
  join: (...parts: string[]): string =>
    parts
      .filter((p) => p !== '')
      .join('/')
      .replace(/\/{2,}/g, '/'),
  dirname: (p: string): string => {
    const s = trimSlashes(p);
    const i = s.lastIndexOf('/');
    return i < 0 ? '.' : i === 0 ? '/' : s.slice(0, i);
  },
  basename: (p: string): string => trimSlashes(p).split('/').pop() ?? '',
  isAbsolute: (p: string): boolean => p.startsWith('/'),
  /** No working directory in a page: relative paths resolve against `/`. */
  resolve: (...parts: string[]): string => normalize(`/${parts.join('/')}`),
  relative: (from: string, to: string): string => {
    const a = normalize(from).split('/').filter(Boolean);
    const b = normalize(to).split('/').filter(Boolean);
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/');
  },
};

/** Collapses `.`, `..` and repeated slashes (POSIX). */
function normalize(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `${p.startsWith('/') ? '/' : ''}${out.join('/')}`;
}

/** `os.totalmem()`: the device's memory (`navigator.deviceMemory`, Chromium) or, unknown, no limit. */
export const nodeOs = {
  homedir: (): string => {
    throw noFileSystemError('os.homedir()');
  },
  totalmem: (): number => {
    const gib = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory;
    return typeof gib === 'number' ? gib * 2 ** 30 : Number.POSITIVE_INFINITY;
  },
};

/** `file:` URLs and paths convert as strings; nothing is read. */
export const nodeUrl = {
  fileURLToPath: (url: string | URL): string => decodeURIComponent(new URL(url).pathname),
  pathToFileURL: (path: string): URL => new URL(`file://${path.startsWith('/') ? '' : '/'}${path}`),
};

/** `createRequire(...).resolve` finds installed packages on disk: not in a browser. */
export const nodeModule = {
  createRequire: (_base: string | URL) => ({
    resolve: (id: string): string => {
      throw noFileSystemError(`require.resolve('${id}')`);
    },
  }),
};

/** `n` random bytes as hex, from Web Crypto. */
export function randomHex(n: number): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(n));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export const HAS_FILE_SYSTEM: boolean = false;

/** An incremental SHA-256 in plain JavaScript (same digests as node:crypto's). */
export function createSha256(): Sha256 {
  return new JsSha256();
}

/** `createHash`: SHA-256 in plain JavaScript; other algorithms are Node-only. */
export const nodeCrypto = {
  createHash: (algorithm: string): Sha256 => {
    if (algorithm === 'sha256') return new JsSha256();
    throw new Error(`relign: crypto.createHash('${algorithm}') is not available in a browser (sha256 is).`);
  },
};
