/**
 * The Hugging Face cache layout, shared with Python's huggingface_hub:
 *
 *   <cache>/models--org--name/blobs/<etag>               file contents (etag: sha256 for LFS files, git sha1 otherwise)
 *   <cache>/models--org--name/blobs/<etag>.incomplete    a download in progress (resumed from its length)
 *   <cache>/models--org--name/refs/<revision>            the commit a branch or tag pointed to when last fetched
 *   <cache>/models--org--name/snapshots/<commit>/<path>  relative symlinks into blobs/
 *
 * `<cache>` is `HF_HUB_CACHE`, else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
 * `~/.cache/huggingface/hub`, read when called (so tests and users can change the environment).
 */
import { nodeFs, nodeOs, nodePath } from '@relign/tensor';

// Node built-ins through @relign/tensor's platform module: a browser bundle gets stand-ins that fail clearly.
const { access, readFile } = nodeFs;
const { homedir } = nodeOs;
const { join } = nodePath;

/** A full commit hash: a revision that names a snapshot directly. */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** huggingface_hub's home (`HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`). */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
}

/** The Hub cache directory huggingface_hub uses, from the environment. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome(env), 'hub');
}

/** `models--org--name` under `cacheDir`. */
export function repoCacheDir(cacheDir: string, repoId: string): string {
  return join(cacheDir, ['models', ...repoId.split('/')].join('--'));
}

/** huggingface_hub's reading of boolean environment variables ("1", "ON", "YES", "TRUE", any case). */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'on', 'yes', 'true'].includes(value.trim().toLowerCase());
}

export async function pathExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The commit `revision` resolves to in the cache (a commit hash as is, a branch/tag via refs/), if known. */
export async function cachedCommit(repoDir: string, revision: string): Promise<string | undefined> {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const commit = (await readFile(join(repoDir, 'refs', revision), 'utf8')).trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}
