/**
 * `resolveModelDir`: a local model folder, or a Hugging Face Hub model id downloaded into the shared cache.
 * The API calls (model info with the commit and file list, paths-info for etags) go through
 * `@huggingface/hub`; file bytes go through `downloadBlob` (resumable, verified).
 */
import { HubApiError, modelInfo, pathsInfo } from '@huggingface/hub';
import { nodeFs, nodePath } from '@relign/tensor';
import {
  cachedCommit,
  COMMIT_HASH,
  envFlag,
  hfHome,
  hubCacheDir,
  pathExists,
  repoCacheDir,
} from './cache.js';
import { downloadBlob, HubHttpError } from './download.js';
import { terminalProgress, type DownloadProgress } from './progress.js';

// Node built-ins through @relign/tensor's platform module: a browser bundle gets stand-ins that fail clearly.
const { mkdir, readFile, rm, stat, symlink, copyFile, writeFile } = nodeFs;
const { dirname, isAbsolute, join, relative, resolve } = nodePath;

/** The Hub that `endpoint` defaults to when neither the option nor `HF_ENDPOINT` is set. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/**
 * What a model needs, fetched when present in the repo: config, generation config, safetensors weights
 * (the index brings its shards), tokenizer files and chat templates, and PEFT adapter files.
 */
export const DEFAULT_MODEL_FILES: readonly string[] = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'model.safetensors.index.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
  'chat_template.json',
  'adapter_config.json',
  'adapter_model.safetensors',
];

const INDEX = 'model.safetensors.index.json';
const SINGLE = 'model.safetensors';
/** Hub repo ids: `name` or `org/name`; no `..` or `--` (reserved by the cache layout). */
const HUB_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

export interface ResolveModelOptions {
  /** Branch, tag or commit hash. Default 'main'. */
  revision?: string;
  /** Hub cache directory. Default `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
  cacheDir?: string;
  /** Hub URL. Default `HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token (`hf_…`) for gated or private repos. Default `HF_TOKEN`, else the token file `huggingface-cli login` wrote. */
  token?: string;
  /** Use only the cache, never the network. Default: `HF_HUB_OFFLINE` is set (1/true/yes/on). */
  offline?: boolean;
  /**
   * Progress of each downloaded file. Default: a bar on stderr when it is a TTY (unless
   * `HF_HUB_DISABLE_PROGRESS_BARS` is set); `false` for none.
   */
  onProgress?: ((p: DownloadProgress) => void) | false;
  /**
   * The repo files to fetch (those absent from the repo are skipped; an index brings its shards).
   * Default {@link DEFAULT_MODEL_FILES}, and then config.json and safetensors weights are required.
   */
  files?: readonly string[];
}

interface Ctx {
  repo: string;
  revision: string;
  endpoint: string;
  cacheDir: string;
  token: string | undefined;
  tokenSource: string | undefined;
}

async function findToken(option: string | undefined): Promise<{ token?: string; source?: string }> {
  if (option) return { token: option, source: 'the token option' };
  if (process.env.HF_TOKEN) return { token: process.env.HF_TOKEN, source: 'HF_TOKEN' };
  if (process.env.HUGGING_FACE_HUB_TOKEN)
    return { token: process.env.HUGGING_FACE_HUB_TOKEN, source: 'HUGGING_FACE_HUB_TOKEN' };
  const path = process.env.HF_TOKEN_PATH || join(hfHome(), 'token');
  const saved = await readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  return saved ? { token: saved, source: path } : {};
}

function where(c: Ctx): string {
  return `${c.repo}${c.revision === 'main' ? '' : `@${c.revision}`} on ${c.endpoint}`;
}

/** Turns a failed Hub call into an error naming the repo, what went wrong and the fix. */
function explain(err: unknown, c: Ctx): Error {
  let status: number | undefined;
  let detail = (err as Error)?.message ?? String(err);
  if (err instanceof HubApiError) {
    status = err.statusCode;
    detail = (err.data as { error?: string } | undefined)?.error ?? detail;
  } else if (err instanceof HubHttpError) {
    status = err.status;
  }
  if (status === 401 || status === 403) {
    const fix = c.token
      ? `the token from ${c.tokenSource} was refused or lacks access: if the model is gated, accept its terms at ` +
        `${c.endpoint}/${c.repo} with that account, or use a read token from ${DEFAULT_HUB_ENDPOINT}/settings/tokens`
      : `it is gated or private (or does not exist): set HF_TOKEN to a read token from ` +
        `${DEFAULT_HUB_ENDPOINT}/settings/tokens of an account that has accepted the model's terms at ` +
        `${c.endpoint}/${c.repo}, or check the id`;
    return new Error(`${where(c)}: HTTP ${status} (${detail}); ${fix}.`, { cause: err });
  }
  if (status === 404) {
    return new Error(
      `${where(c)}: not found (HTTP 404: ${detail}); check the model id and revision "${c.revision}".`,
      { cause: err },
    );
  }
  if (status !== undefined) {
    return new Error(`${where(c)}: the Hub answered HTTP ${status} (${detail}); try again later.`, {
      cause: err,
    });
  }
  if (err instanceof TypeError && /fetch failed/i.test(err.message)) {
    const cause = (err.cause as Error | undefined)?.message ?? err.message;
    return new Error(
      `${where(c)}: cannot reach ${c.endpoint} (${cause}); check the network (or HF_ENDPOINT), or set ` +
        `HF_HUB_OFFLINE=1 to use a model already in the cache at ${c.cacheDir}.`,
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** The files a cached snapshot lacks among those a model needs (config.json, weights incl. every shard). */
async function missingModelFiles(snapshot: string): Promise<string[]> {
  const missing: string[] = [];
  if (!(await pathExists(join(snapshot, 'config.json')))) missing.push('config.json');
  if (await pathExists(join(snapshot, SINGLE))) return missing;
  let index: { weight_map?: Record<string, string> };
  try {
    index = JSON.parse(await readFile(join(snapshot, INDEX), 'utf8'));
  } catch {
    return [...missing, `${SINGLE} (or ${INDEX})`];
  }
  for (const shard of new Set(Object.values(index.weight_map ?? {}))) {
    if (!(await pathExists(join(snapshot, shard)))) missing.push(shard);
  }
  return missing;
}

/** The cached snapshot for `c`, or an error saying what is missing and how to get it. */
async function fromCache(c: Ctx, requireModel: boolean, why: string): Promise<string> {
  const repoDir = repoCacheDir(c.cacheDir, c.repo);
  const commit = await cachedCommit(repoDir, c.revision);
  const snapshot = commit === undefined ? undefined : join(repoDir, 'snapshots', commit);
  const fix = `run once with network access (unset HF_HUB_OFFLINE), or pass the path of a local model folder`;
  if (snapshot === undefined || !(await pathExists(snapshot))) {
    throw new Error(`${where(c)}: ${why}, and it is not in the cache at ${c.cacheDir}; ${fix}.`);
  }
  const missing = requireModel ? await missingModelFiles(snapshot) : [];
  if (missing.length > 0) {
    throw new Error(
      `${where(c)}: ${why}, and the cached snapshot ${snapshot} lacks ${missing.join(', ')} (an interrupted ` +
        `download); ${fix}.`,
    );
  }
  return snapshot;
}

/** Points `snapshots/<commit>/<file>` at `blobs/<etag>` with a relative symlink (a copy where links fail). */
async function linkIntoSnapshot(blobPath: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  await rm(pointer, { force: true }); // a dangling or stale link of ours
  try {
    await symlink(relative(dirname(pointer), blobPath), pointer);
  } catch {
    await copyFile(blobPath, pointer);
  }
}

/** Downloads `files` (those not yet in the snapshot) at `commit`; returns nothing, throws explained errors. */
async function fetchFiles(
  c: Ctx,
  commit: string,
  files: string[],
  onProgress: ((p: DownloadProgress) => void) | undefined,
): Promise<void> {
  const repoDir = repoCacheDir(c.cacheDir, c.repo);
  const snapshot = join(repoDir, 'snapshots', commit);
  const todo: string[] = [];
  for (const f of files) if (!(await pathExists(join(snapshot, f)))) todo.push(f);
  if (todo.length === 0) return;
  const credentials = c.token ? { accessToken: c.token } : {};
  const infos = await pathsInfo({
    repo: { type: 'model', name: c.repo },
    paths: todo,
    revision: commit,
    hubUrl: c.endpoint,
    ...credentials,
  }).catch((err: unknown) => {
    throw explain(err, c);
  });
  const headers: Record<string, string> = c.token ? { Authorization: `Bearer ${c.token}` } : {};
  const asked = new Set(todo);
  for (const info of infos) {
    if (info.type !== 'file' || !asked.has(info.path)) continue; // only what was asked: no surprise paths
    const etag = info.lfs?.oid ?? info.oid;
    const size = info.lfs?.size ?? info.size;
    if (!etag || !/^[\w.-]+$/.test(etag)) {
      throw new Error(`${where(c)}: the Hub sent no usable etag for ${info.path}; try again later.`);
    }
    const blobPath = join(repoDir, 'blobs', etag);
    if (!(await pathExists(blobPath))) {
      await mkdir(dirname(blobPath), { recursive: true });
      const url = `${c.endpoint}/${c.repo}/resolve/${commit}/${info.path.split('/').map(encodeURIComponent).join('/')}`;
      const report = (downloaded: number): void =>
        onProgress?.({ repo: c.repo, file: info.path, downloaded, total: size, done: downloaded === size });
      await downloadBlob({ url, headers, blobPath, size, etag, onBytes: report }).catch((err: unknown) => {
        throw explain(err, c);
      });
      if (size === 0) report(0);
    }
    await linkIntoSnapshot(blobPath, join(snapshot, info.path));
  }
}

/**
 * A local model folder for `idOrDir`: an existing directory is returned as is (resolved to an absolute
 * path); a Hub model id (`org/name`) is downloaded into the Hugging Face cache (shared with Python's
 * huggingface_hub) and its snapshot folder returned: config.json, generation_config.json, safetensors
 * weights (single or index + shards), tokenizer files and chat templates, whichever the repo has. Files
 * already cached are not downloaded again; interrupted downloads resume; offline, the cached snapshot is
 * used (also when the Hub cannot be reached).
 *
 * @throws Error naming the repo and the fix: unknown repo, gated/private without a token (set HF_TOKEN),
 *   offline and not cached, a repo without config.json or safetensors weights, a failed download.
 */
export async function resolveModelDir(idOrDir: string, options: ResolveModelOptions = {}): Promise<string> {
  const st = await stat(idOrDir).catch(() => undefined);
  if (st?.isDirectory()) return resolve(idOrDir);
  if (st !== undefined)
    throw new Error(`${idOrDir} is a file; pass a model folder or a Hub model id (org/name).`);
  if (!HUB_ID.test(idOrDir) || idOrDir.includes('..') || idOrDir.includes('--')) {
    throw new Error(
      `${idOrDir}: no such directory, and not a Hub model id like "HuggingFaceTB/SmolLM2-135M-Instruct"; ` +
        'check the path.',
    );
  }
  const { token, source } = await findToken(options.token);
  if (token !== undefined && !token.startsWith('hf_')) {
    throw new Error(
      `the Hub token from ${source} does not start with "hf_"; copy a token from ${DEFAULT_HUB_ENDPOINT}/settings/tokens.`,
    );
  }
  const c: Ctx = {
    repo: idOrDir,
    revision: options.revision ?? 'main',
    endpoint: (options.endpoint ?? (process.env.HF_ENDPOINT || DEFAULT_HUB_ENDPOINT)).replace(/\/+$/, ''),
    cacheDir: options.cacheDir ?? hubCacheDir(),
    token,
    tokenSource: source,
  };
  const requireModel = options.files === undefined;
  const offline = options.offline ?? envFlag(process.env.HF_HUB_OFFLINE);
  if (offline) return fromCache(c, requireModel, 'offline mode is on (HF_HUB_OFFLINE or offline: true)');

  let info;
  try {
    info = await modelInfo({
      name: c.repo,
      revision: c.revision,
      hubUrl: c.endpoint,
      additionalFields: ['sha', 'filePaths'],
      ...(token ? { accessToken: token } : {}),
    });
  } catch (err) {
    const explained = explain(err, c);
    // Unreachable Hub: fall back to the cache, as huggingface_hub does.
    if (err instanceof TypeError && explained !== err) {
      return fromCache(c, requireModel, `${c.endpoint} cannot be reached`).catch(() => {
        throw explained;
      });
    }
    throw explained;
  }
  const commit = info.sha;
  if (typeof commit !== 'string' || !COMMIT_HASH.test(commit)) {
    throw new Error(
      `${where(c)}: the Hub sent no commit hash for revision "${c.revision}"; try again later.`,
    );
  }
  const inRepo = new Set<string>(info.filePaths ?? []);
  // With both a single file and an index, transformers loads the single file: skip the index and its shards.
  const wanted = (options.files ?? DEFAULT_MODEL_FILES).filter(
    (f) => inRepo.has(f) && !(f === INDEX && inRepo.has(SINGLE)),
  );
  if (requireModel) {
    if (!inRepo.has('config.json')) {
      throw new Error(
        `${where(c)}: the repo has no config.json, so it is not a transformers model; check the id.`,
      );
    }
    if (!inRepo.has(SINGLE) && !inRepo.has(INDEX)) {
      const bin = inRepo.has('pytorch_model.bin') || inRepo.has('pytorch_model.bin.index.json');
      throw new Error(
        `${where(c)}: the repo has no safetensors weights (${SINGLE} or ${INDEX})` +
          (bin
            ? "; it only has pytorch_model.bin: convert it with transformers' save_pretrained(safe_serialization=True) and pass the folder."
            : '; pick a repo with safetensors weights.'),
      );
    }
  }
  const progress =
    options.onProgress === false
      ? undefined
      : (options.onProgress ??
        (envFlag(process.env.HF_HUB_DISABLE_PROGRESS_BARS) ? undefined : terminalProgress()));

  await fetchFiles(c, commit, wanted, progress);
  const snapshot = join(repoCacheDir(c.cacheDir, c.repo), 'snapshots', commit);
  if (wanted.includes(INDEX)) {
    let index: { weight_map?: Record<string, unknown> };
    try {
      index = JSON.parse(await readFile(join(snapshot, INDEX), 'utf8')) as typeof index;
    } catch (err) {
      throw new Error(
        `${where(c)}: ${INDEX} is not valid JSON (${(err as Error).message}); the repo is broken.`,
      );
    }
    const shards = [...new Set(Object.values(index?.weight_map ?? {}))] as string[];
    // Shard names come from the repo: keep them inside the snapshot folder.
    const unsafe = shards.find(
      (s) => typeof s !== 'string' || isAbsolute(s) || s.split(/[\\/]/).includes('..'),
    );
    if (unsafe !== undefined) {
      throw new Error(
        `${where(c)}: ${INDEX} names the shard ${JSON.stringify(unsafe)}, outside the repo; the repo is broken.`,
      );
    }
    const absent = shards.filter((s) => !inRepo.has(s));
    if (absent.length > 0) {
      throw new Error(
        `${where(c)}: ${INDEX} names shard(s) the repo lacks: ${absent.join(', ')}; the repo is broken.`,
      );
    }
    await fetchFiles(c, commit, shards, progress);
  }
  if (c.revision !== commit) {
    // Python's huggingface_hub records which commit a branch/tag pointed to, for offline use.
    const ref = join(repoCacheDir(c.cacheDir, c.repo), 'refs', c.revision);
    await mkdir(dirname(ref), { recursive: true });
    await writeFile(ref, commit);
  }
  await mkdir(snapshot, { recursive: true });
  return snapshot;
}
