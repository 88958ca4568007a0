/**
 * A file system in memory, for {@link useFileSystem}: with it, every file the relign packages write (Trainer and
 * SFT checkpoints, metrics.jsonl, saved models) lands in a Map, in a browser as in Node. A page can then keep the
 * files, put them in IndexedDB or offer them as downloads (`files()`), and a run resumes from them. Implements
 * the part of `node:fs/promises` relign uses; anything else rejects naming the call.
 */
import type fsp from 'node:fs/promises';

type Data = Uint8Array | string;

function fsError(code: string, call: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${call} '${path}' (in-memory file system)`), { code, path });
}

function norm(p: string | URL): string {
  const s = typeof p === 'string' ? p : decodeURIComponent(p.pathname);
  const out: string[] = [];
  for (const part of s.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

const parentOf = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
const bytesOf = (d: Data) => (typeof d === 'string' ? new TextEncoder().encode(d) : new Uint8Array(d));

/** The in-memory file system; `files()` lists what was written. */
export interface MemoryFileSystem {
  /** `node:fs/promises` for {@link useFileSystem}. */
  readonly fs: typeof fsp;
  /** Every file by absolute path (relative paths are taken from `/`). */
  files(): Map<string, Uint8Array>;
}

export function createMemoryFileSystem(): MemoryFileSystem {
  const files = new Map<string, Uint8Array>();
  const dirs = new Set<string>(['/']);

  const isDir = (p: string) => dirs.has(p);
  const needParent = (call: string, p: string) => {
    if (!isDir(parentOf(p))) throw fsError('ENOENT', call, p);
  };
  const read = (call: string, path: string | URL): Uint8Array => {
    const p = norm(path);
    const f = files.get(p);
    if (f === undefined) throw fsError(isDir(p) ? 'EISDIR' : 'ENOENT', call, p);
    return f;
  };
  const decode = (b: Uint8Array, enc: unknown) =>
    enc === 'utf8' ||
    enc === 'utf-8' ||
    (enc as { encoding?: string } | undefined)?.encoding?.startsWith('utf')
      ? new TextDecoder().decode(b)
      : b.slice();
  const write = (call: string, path: string | URL, data: Data, flag?: string) => {
    const p = norm(path);
    needParent(call, p);
    if (isDir(p)) throw fsError('EISDIR', call, p);
    if (flag === 'wx' && files.has(p)) throw fsError('EEXIST', call, p);
    files.set(p, bytesOf(data));
  };
  const stat = (p: string) => {
    const file = files.get(p);
    if (file === undefined && !isDir(p)) throw fsError('ENOENT', 'stat', p);
    return {
      size: file?.length ?? 0,
      isFile: () => file !== undefined,
      isDirectory: () => file === undefined,
      mtimeMs: 0,
    };
  };
  const under = (p: string) => (q: string) => q === p || q.startsWith(`${p}/`);

  const impl = {
    async readFile(path: string | URL, enc?: unknown) {
      return decode(read('readFile', path), enc);
    },
    async writeFile(path: string | URL, data: Data) {
      write('writeFile', path, data);
    },
    async appendFile(path: string | URL, data: Data) {
      const p = norm(path);
      const old = files.get(p) ?? new Uint8Array(0);
      const add = bytesOf(data);
      const both = new Uint8Array(old.length + add.length);
      both.set(old);
      both.set(add, old.length);
      write('appendFile', p, both);
    },
    async mkdir(path: string | URL, options?: { recursive?: boolean }) {
      const p = norm(path);
      if (files.has(p)) throw fsError('EEXIST', 'mkdir', p);
      if (isDir(p)) {
        if (options?.recursive) return undefined;
        throw fsError('EEXIST', 'mkdir', p);
      }
      if (!options?.recursive) needParent('mkdir', p);
      const parts = p.split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) dirs.add(`/${parts.slice(0, i).join('/')}`);
      return options?.recursive ? p : undefined;
    },
    async readdir(path: string | URL) {
      const p = norm(path);
      if (!isDir(p)) throw fsError(files.has(p) ? 'ENOTDIR' : 'ENOENT', 'readdir', p);
      const prefix = p === '/' ? '/' : `${p}/`;
      const names = new Set<string>();
      for (const q of [...files.keys(), ...dirs]) {
        if (q !== p && q.startsWith(prefix)) names.add(q.slice(prefix.length).split('/')[0]!);
      }
      return [...names].sort();
    },
    async stat(path: string | URL) {
      return stat(norm(path));
    },
    async access(path: string | URL) {
      stat(norm(path));
    },
    async rename(from: string | URL, to: string | URL) {
      const a = norm(from);
      const b = norm(to);
      stat(a);
      needParent('rename', b);
      if (isDir(a)) {
        if (files.has(b) || [...files.keys(), ...dirs].some((q) => q !== b && under(b)(q)))
          throw fsError('ENOTEMPTY', 'rename', b);
        for (const d of [...dirs].filter(under(a))) {
          dirs.delete(d);
          dirs.add(b + d.slice(a.length));
        }
        for (const [f, data] of [...files].filter(([f]) => under(a)(f))) {
          files.delete(f);
          files.set(b + f.slice(a.length), data);
        }
      } else {
        if (isDir(b)) throw fsError('EISDIR', 'rename', b);
        files.set(b, files.get(a)!);
        files.delete(a);
      }
    },
    async rm(path: string | URL, options?: { recursive?: boolean; force?: boolean }) {
      const p = norm(path);
      if (files.delete(p)) return;
      if (!isDir(p)) {
        if (options?.force) return;
        throw fsError('ENOENT', 'rm', p);
      }
      if (!options?.recursive) throw fsError('EISDIR', 'rm', p);
      for (const f of [...files.keys()].filter(under(p))) files.delete(f);
      for (const d of [...dirs].filter(under(p))) if (d !== '/') dirs.delete(d);
    },
    async open(path: string | URL, flags = 'r') {
      const p = norm(path);
      if (flags === 'r') stat(p);
      else if (flags === 'wx' || flags === 'w') write('open', p, new Uint8Array(0), flags);
      else throw fsError('EINVAL', `open(flags '${flags}')`, p);
      return {
        async writeFile(data: Data) {
          write('writeFile', p, data);
        },
        async readFile(enc?: unknown) {
          return decode(read('readFile', p), enc);
        },
        async read(buffer: Uint8Array, offset: number, length: number, position: number) {
          const chunk = read('read', p).subarray(position, position + length);
          buffer.set(chunk, offset);
          return { bytesRead: chunk.length, buffer };
        },
        async *readLines() {
          yield* new TextDecoder().decode(read('readLines', p)).split(/\r\n|\n|\r/);
        },
        async stat() {
          return stat(p);
        },
        async sync() {},
        async close() {},
      };
    },
  };

  const fs = new Proxy(impl, {
    get: (target, name) =>
      name in target
        ? target[name as keyof typeof target]
        : () => Promise.reject(fsError('ENOSYS', `fs.${String(name)}()`, '')),
  }) as unknown as typeof fsp;
  return { fs, files: () => new Map(files) };
}
