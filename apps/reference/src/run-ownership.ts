/**
 * What relign may delete in a run directory: only what it created there. A run directory carries relign's
 * marker `.relign-run.json`, which lists the files and folders relign created (paths relative to the run
 * directory, `/`-separated). relign refuses a non-empty directory without the marker unless `--force`, and
 * even then it removes only listed paths: a user's `report/thesis.tex` or `train/data.csv` is never touched.
 *
 * What a stage creates is found by listing the run layout's entries before and after it (`track`): every
 * path that appears meanwhile is relign's. While a stage runs the marker holds the listing from before it
 * (`pending`), so after a crash (`kill -9`) the next command still knows which paths the stage created.
 */
import type { Dirent } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@relign/tensor';

/** relign's marker file in a run directory. */
export const RUN_MARKER = '.relign-run.json';

/** The top-level entries relign writes in a run directory (the layout of run-dir.ts); nothing else is listed. */
export const RUN_LAYOUT = [
  'config.json',
  'stages.json',
  'pretrain',
  'sft',
  'labels',
  'reward',
  'train',
  'eval',
  'samples',
  'frontier',
  'report',
] as const;

interface Marker {
  relign: 'run-directory';
  version: 1;
  createdAt: string;
  /** Paths relign created (files, and folders with a trailing `/`). */
  created: string[];
  /** Set while a stage runs: the paths that existed before it. */
  pending?: string[];
}

/** A non-empty directory that relign did not create was given as the run directory without `--force`. */
export class ForeignRunDirError extends Error {
  constructor(readonly dir: string) {
    super(
      `${dir} is not empty and has no ${RUN_MARKER}, so relign did not create it. relign refuses to write ` +
        'into it: choose another --run-dir (a new or empty directory), or pass --force to use it anyway ' +
        '(relign then removes only files it creates itself, never the ones already there).',
    );
    this.name = 'ForeignRunDirError';
  }
}

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/** The kind of entry at `path` (symbolic links are entries of their own, never followed). */
async function kind(path: string): Promise<'dir' | 'other' | undefined> {
  try {
    return (await lstat(path)).isDirectory() ? 'dir' : 'other';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Adds every path under `rel` (relative to root; folders with a trailing `/`), `rel` itself included. */
async function listUnder(root: string, rel: string, out: Set<string>): Promise<void> {
  const k = await kind(join(root, rel));
  if (k === undefined) return;
  if (k === 'other') {
    out.add(rel);
    return;
  }
  out.add(`${rel}/`);
  for (const e of await entries(join(root, rel))) {
    const child = `${rel}/${e.name}`;
    if (e.isDirectory()) await listUnder(root, child, out);
    else out.add(child);
  }
}

/** The paths of the run layout that exist now. */
async function listLayout(root: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const top of RUN_LAYOUT) await listUnder(root, top, out);
  return out;
}

/** relign's record of what it created in one run directory. */
export class RunOwnership {
  /** The paths relign created (the marker's `created`). */
  private readonly created: Set<string>;
  /** While a stage is tracked: the paths that existed before it (anything else is the stage's). */
  private baseline: Set<string> | undefined;

  private constructor(
    readonly root: string,
    private readonly marker: Marker,
  ) {
    this.created = new Set(marker.created);
  }

  get markerPath(): string {
    return join(this.root, RUN_MARKER);
  }

  /**
   * Opens the run directory `root` for writing: a missing or empty directory becomes relign's (the marker
   * is written); one with the marker is reopened; any other needs `force` (its files stay unlisted).
   * @throws ForeignRunDirError for a non-empty directory without the marker and without `force`.
   */
  static async claim(root: string, options: { force?: boolean } = {}): Promise<RunOwnership> {
    const existing = await RunOwnership.open(root);
    if (existing) return existing;
    if ((await entries(root)).length > 0 && !options.force) throw new ForeignRunDirError(root);
    await mkdir(root, { recursive: true });
    const own = new RunOwnership(root, {
      relign: 'run-directory',
      version: 1,
      createdAt: new Date().toISOString(),
      created: [],
    });
    await own.save();
    return own;
  }

  /**
   * The ownership record of `root`, or undefined when it has no marker. A stage left pending by a killed
   * process is settled first (what appeared since it started is relign's).
   * @throws Error naming the marker file when it is not a valid marker.
   */
  static async open(root: string): Promise<RunOwnership | undefined> {
    const path = join(root, RUN_MARKER);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let marker: Marker;
    try {
      marker = JSON.parse(text) as Marker;
    } catch (err) {
      throw new Error(
        `${path} is not valid JSON (${(err as Error).message}). It is relign's record of the files it created ` +
          'here; delete it and pass --force (relign then removes none of the files already there).',
      );
    }
    const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
    if (
      marker?.relign !== 'run-directory' ||
      !strings(marker.created) ||
      (marker.pending !== undefined && !strings(marker.pending))
    ) {
      throw new Error(
        `${path} is not a relign run marker (expected {"relign": "run-directory", "created": [paths]}); ` +
          'delete it and pass --force (relign then removes none of the files already there).',
      );
    }
    const own = new RunOwnership(root, marker);
    if (marker.pending) await own.settle(new Set(marker.pending));
    return own;
  }

  /** Whether relign created `rel` (a file, or a folder written with a trailing `/`). */
  owns(rel: string): boolean {
    return this.created.has(rel) || (this.baseline !== undefined && !this.baseline.has(rel));
  }

  /**
   * Runs `work` (a stage) and records every path of the run layout that appeared meanwhile as relign's —
   * also when `work` throws. Paths deleted meanwhile are dropped from the record.
   */
  async track<T>(work: () => Promise<T>): Promise<T> {
    if (this.baseline) return work(); // nested: the outer call records
    const before = await listLayout(this.root);
    this.baseline = before;
    this.marker.pending = [...before].sort();
    await this.save();
    try {
      return await work();
    } finally {
      this.baseline = undefined;
      await this.settle(before);
    }
  }

  /** Adds what appeared since `before` to the record, drops what is gone, clears `pending`. */
  private async settle(before: Set<string>): Promise<void> {
    const now = await listLayout(this.root);
    for (const p of now) if (!before.has(p)) this.created.add(p);
    for (const p of this.created) if (!now.has(p)) this.created.delete(p);
    delete this.marker.pending;
    await this.save();
  }

  /**
   * Removes what relign created under `rel` (a file or a folder, relative to the run directory): its listed
   * files, then its listed folders that are then empty. Anything else there stays.
   */
  async remove(rel: string): Promise<void> {
    const found = new Set<string>();
    await listUnder(this.root, rel, found);
    const paths = [...found];
    for (const p of paths) {
      if (!p.endsWith('/') && this.owns(p)) await rm(join(this.root, p), { force: true });
    }
    // Deepest folders first, so a parent is tried after its children.
    const dirs = paths.filter((p) => p.endsWith('/') && this.owns(p)).sort((a, b) => b.length - a.length);
    for (const d of dirs) {
      await rmdir(join(this.root, d)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST' && err.code !== 'ENOENT') throw err;
      });
    }
    for (const p of paths) if (!(await existsEntry(this.root, p))) this.created.delete(p);
    await this.save();
  }

  private async save(): Promise<void> {
    this.marker.created = [...this.created].sort();
    await writeFileAtomic(this.markerPath, JSON.stringify(this.marker, null, 2) + '\n');
  }
}

async function existsEntry(root: string, p: string): Promise<boolean> {
  const k = await kind(join(root, p));
  return p.endsWith('/') ? k === 'dir' : k !== undefined;
}
