/**
 * A model folder's weights in the Hugging Face layout: one `model.safetensors`, or shards
 * `model-00001-of-0000N.safetensors` listed by `model.safetensors.index.json`
 * (`{"metadata": {"total_size": bytes}, "weight_map": {tensor: shard file}}`), as `save_pretrained` writes
 * them. Shards are read header first and then tensor by tensor (see `readSafetensors`).
 */
import { writeFileAtomic } from './atomic.js';
import {
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsFloatDtype,
  type SafetensorsHeaderEntry,
  type TensorData,
} from './safetensors.js';
import { nodeFs, nodeOs, nodePath } from '../platform/index.js';

// Node built-ins through @relign/tensor's platform module: a browser bundle gets stand-ins that fail clearly.
const { access, mkdir, readFile } = nodeFs;
const { isAbsolute, join } = nodePath;
const { totalmem } = nodeOs;

/** The single-file weights name of the Hugging Face layout. */
export const SAFETENSORS_WEIGHTS_NAME = 'model.safetensors';
/** The index of sharded weights. */
export const SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json';
/** transformers' default `max_shard_size` ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export interface ReadSafetensorsDirOptions {
  /** Reject NaN/±Inf weights, naming the file and tensor. Default false. */
  finite?: boolean;
  /**
   * Refuse (before reading any tensor data) weights that need more than this many bytes once converted to
   * float32/int32. Default: this machine's total memory (`os.totalmem()`).
   */
  maxBytes?: number;
  /** Read only these tensors; a name the folder lacks is an error. Default: all. */
  names?: Iterable<string>;
}

/** What {@link readSafetensorsDir} returns. */
export interface SafetensorsDirContents {
  /** Every tensor, float32 or int32 (F16/BF16/F64 widened/narrowed to float32), in file then data order. */
  tensors: Map<string, TensorData>;
  /** The dtype each tensor was stored as (so a save can write the same back). */
  storedDtypes: Map<string, SafetensorsDtype>;
  /** `__metadata__` of the single file, or of the first shard. */
  metadata: Record<string, string>;
  /** The safetensors files read, as paths under `dir`. */
  files: string[];
  /** Whether the weights came through `model.safetensors.index.json`. */
  sharded: boolean;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Parses and checks an index file; returns tensor -> shard file name. */
async function readIndex(indexPath: string): Promise<Map<string, string>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    throw new Error(
      `${indexPath}: cannot read the safetensors index (${(err as Error).message}); re-download or re-save the model`,
      { cause: err },
    );
  }
  const map = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new Error(
      `${indexPath}: "weight_map" must be an object of tensor name -> shard file name; the index is damaged, re-download it`,
    );
  }
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || file === '' || isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
      throw new Error(
        `${indexPath}: "weight_map" entry for tensor ${JSON.stringify(name)} is ${JSON.stringify(file)}; it must be ` +
          'a shard file name inside the model folder (e.g. "model-00001-of-00002.safetensors")',
      );
    }
    out.set(name, file);
  }
  if (out.size === 0)
    throw new Error(`${indexPath}: "weight_map" is empty; the index is damaged, re-download it`);
  return out;
}

function gib(bytes: number): string {
  return bytes < 2 ** 20 ? `${bytes} bytes` : `${+(bytes / 2 ** 30).toPrecision(3)} GiB`;
}

/**
 * Reads a model folder's safetensors weights: `model.safetensors` when present (as transformers does),
 * otherwise every shard named by `model.safetensors.index.json`, taking each tensor from the shard the
 * index names. All headers are read and checked (missing shards, tensors the index promises but a shard
 * lacks, unsupported dtypes, the memory limit) before any tensor data is read.
 *
 * @throws Error naming the folder or file, the tensor or field concerned, and the fix.
 */
export async function readSafetensorsDir(
  dir: string,
  options: ReadSafetensorsDirOptions = {},
): Promise<SafetensorsDirContents> {
  const single = join(dir, SAFETENSORS_WEIGHTS_NAME);
  const indexPath = join(dir, SAFETENSORS_INDEX_NAME);
  // shard path -> tensor names wanted from it (undefined: all of a single file)
  const plan = new Map<string, string[] | undefined>();
  let sharded = false;
  if (await exists(single)) {
    plan.set(single, options.names === undefined ? undefined : [...options.names]);
  } else if (await exists(indexPath)) {
    sharded = true;
    const index = await readIndex(indexPath);
    const wanted = options.names === undefined ? [...index.keys()] : [...options.names];
    for (const name of wanted) {
      const file = index.get(name);
      if (file === undefined) {
        throw new Error(`${indexPath}: tensor ${JSON.stringify(name)} is not in "weight_map"`);
      }
      const path = join(dir, file);
      if (!plan.has(path)) plan.set(path, []);
      plan.get(path)!.push(name);
    }
    for (const [path, names] of plan) {
      if (!(await exists(path))) {
        throw new Error(
          `${indexPath}: "weight_map" puts ${names!.length} tensor(s) (e.g. ${JSON.stringify(names![0])}) in ` +
            `${path}, which does not exist: the download is incomplete; download that shard again (or re-save the model)`,
        );
      }
    }
  } else {
    throw new Error(
      `${dir}: no ${SAFETENSORS_WEIGHTS_NAME} or ${SAFETENSORS_INDEX_NAME}. A model folder needs safetensors ` +
        "weights: convert pytorch_model.bin with transformers' save_pretrained(safe_serialization=True).",
    );
  }

  // Headers first: the size check and name checks happen before any tensor data is read.
  const storedDtypes = new Map<string, SafetensorsDtype>();
  let bytes = 0;
  let biggest: { name: string; bytes: number } = { name: '', bytes: -1 };
  for (const [path, names] of plan) {
    const { entries } = await readSafetensorsHeader(path);
    const byName = new Map<string, SafetensorsHeaderEntry>(entries.map((e) => [e.name, e]));
    for (const name of names ?? byName.keys()) {
      const e = byName.get(name);
      if (e === undefined) {
        throw new Error(
          sharded
            ? `${indexPath}: "weight_map" says tensor ${JSON.stringify(name)} is in ${path}, but that shard does ` +
                'not hold it: the index and the shards do not match; download the model again'
            : `${path}: tensor ${JSON.stringify(name)} is not in this file`,
        );
      }
      storedDtypes.set(name, e.dtype);
      const n = 4 * e.shape.reduce((a, d) => a * d, 1); // float32/int32 in memory
      bytes += n;
      if (n > biggest.bytes) biggest = { name, bytes: n };
    }
  }
  const limit = options.maxBytes ?? totalmem();
  if (bytes > limit) {
    throw new Error(
      `${dir}: the weights need ${gib(bytes)} as float32, more than ` +
        `${options.maxBytes === undefined ? "this machine's memory" : 'maxBytes'} (${gib(limit)}); the largest ` +
        `tensor is ${JSON.stringify(biggest.name)} (${gib(biggest.bytes)}). Use a smaller model, or raise maxBytes.`,
    );
  }

  const tensors = new Map<string, TensorData>();
  let metadata: Record<string, string> | undefined;
  for (const [path, names] of plan) {
    const file = await readSafetensors(path, { finite: options.finite, names });
    metadata ??= file.metadata;
    for (const [name, t] of file.tensors) tensors.set(name, t);
  }
  return { tensors, storedDtypes, metadata: metadata ?? {}, files: [...plan.keys()], sharded };
}

export interface WriteSafetensorsDirOptions {
  /**
   * Largest shard in bytes (as stored). Weights that fit are written as one `model.safetensors`; larger
   * ones as `model-0000i-of-0000N.safetensors` plus the index. A tensor larger than this gets a shard of
   * its own. Default 5e9 (transformers' "5GB").
   */
  maxShardBytes?: number;
  /** Storage dtype of float32 tensors: 'F32' (default), 'F16' or 'BF16' (rounded to nearest even). */
  dtype?: SafetensorsFloatDtype;
  /** `__metadata__` of every file. Default `{ format: 'pt' }` (what transformers expects). */
  metadata?: Record<string, string>;
}

/**
 * Writes weights in the layout {@link readSafetensorsDir} reads (and transformers' `from_pretrained`):
 * shards are filled in the order of `tensors`, each file is written atomically, and the index last, so a
 * crash never leaves an index pointing at missing shards. `dir` is created.
 *
 * @returns the files written, as paths under `dir`, and whether the weights were sharded.
 * @throws Error when sharding into a folder that already holds a `model.safetensors` (it would shadow the
 *   index when loading); remove it or save into an empty folder.
 */
export async function writeSafetensorsDir(
  dir: string,
  tensors: Map<string, TensorData> | Record<string, TensorData>,
  options: WriteSafetensorsDirOptions = {},
): Promise<{ files: string[]; sharded: boolean }> {
  const { maxShardBytes = DEFAULT_MAX_SHARD_BYTES, dtype = 'F32', metadata = { format: 'pt' } } = options;
  if (!(maxShardBytes > 0)) {
    throw new Error(`writeSafetensorsDir: maxShardBytes must be > 0 (got ${String(maxShardBytes)})`);
  }
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const width = (t: TensorData): number => (t.dtype === 'float32' && dtype !== 'F32' ? 2 : 4);
  const shards: [string, TensorData][][] = [[]];
  let size = 0;
  let total = 0;
  for (const entry of list) {
    const n = entry[1].data.length * width(entry[1]);
    if (size + n > maxShardBytes && shards.at(-1)!.length > 0) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(entry);
    size += n;
    total += n;
  }
  await mkdir(dir, { recursive: true });
  if (shards.length === 1) {
    const path = join(dir, SAFETENSORS_WEIGHTS_NAME);
    await writeSafetensors(path, new Map(list), metadata, { dtype });
    return { files: [path], sharded: false };
  }
  const single = join(dir, SAFETENSORS_WEIGHTS_NAME);
  if (await exists(single)) {
    throw new Error(
      `writeSafetensorsDir: ${single} exists and would be loaded instead of the new shards; remove it or ` +
        'save into an empty folder',
    );
  }
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  const count = String(shards.length).padStart(5, '0');
  for (let i = 0; i < shards.length; i++) {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${count}.safetensors`;
    await writeSafetensors(join(dir, name), new Map(shards[i]), metadata, { dtype });
    files.push(join(dir, name));
    for (const [tensor] of shards[i]!) weightMap[tensor] = name;
  }
  const sortedMap = Object.fromEntries(
    Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const indexPath = join(dir, SAFETENSORS_INDEX_NAME);
  await writeFileAtomic(
    indexPath,
    JSON.stringify({ metadata: { total_size: total }, weight_map: sortedMap }, null, 2) + '\n',
  );
  return { files: [...files, indexPath], sharded: true };
}
