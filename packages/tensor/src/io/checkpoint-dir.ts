/**
 * The checkpoint-folder format shared by every relign trainer (SFT, pretraining, reward model, the RLHF
 * Trainer): one writer and one reader, so that every checkpoint has the same crash safety and the same checks.
 *
 * Layout of a checkpoint directory (format version 2):
 * ```
 * latest.json          {"format": "relign-checkpoint", "version": 2, "checkpoint": "step-00000012", "step": 12}
 * step-00000012/
 *   trainer_state.json {"format": "relign-checkpoint-state", "version": 2, "kind": "causal-lm", "step": 12,
 *                       "state": {...}}      (the trainer's JSON state; `kind` names the trainer)
 *   ...                the trainer's files (weights, optimizer moments, replay buffer, ...)
 * ```
 * Atomicity: a checkpoint is written into `step-N.tmp-<random>/`, renamed to `step-N/` when complete, and only
 * then does `latest.json` (written atomically) point at it. A crash at any point leaves the previous checkpoint
 * in force; leftover `*.tmp-*` directories are removed by the next save, and all but the newest `keep`
 * checkpoints after it.
 *
 * Version 1 folders (relign before this module) still load: `latest.json` without `"version"` (the SFT /
 * reward-model pointer `{"checkpoint": "step-N-<hex>"}` or the Trainer's `"format": "relign-trainer-checkpoint"`),
 * and a `trainer_state.json` that is the trainer's state itself (see {@link readCheckpointState}).
 */
import { nodeFs, nodePath, randomHex } from '../platform/index.js';
import { writeFileAtomic } from './atomic.js';

export const LATEST_FILE = 'latest.json';
export const TRAINER_STATE_FILE = 'trainer_state.json';
/** The format version this module writes (and the newest it reads). */
export const CHECKPOINT_FORMAT_VERSION = 2;
/** Checkpoints kept by {@link writeCheckpointDir} unless told otherwise. */
export const DEFAULT_KEEP_CHECKPOINTS = 2;

const LATEST_FORMAT = 'relign-checkpoint';
const STATE_FORMAT = 'relign-checkpoint-state';
/** Version 1 (the Trainer's) pointer and state formats. */
const V1_TRAINER_LATEST = 'relign-trainer-checkpoint';
const V1_TRAINER_STATE = 'relign-trainer-state';
/** `step-N`; version 1 SFT / reward-model checkpoints add `-<hex>`. */
const STEP_RE = /^step-(\d+)(?:-[0-9a-f]+)?$/;
const TMP_RE = /^step-\d+\.(tmp|old)-[0-9a-f]+$/;

/** What {@link writeCheckpointDir} writes besides the trainer's own files. */
export interface CheckpointContents {
  /** The trainer that wrote it (`"causal-lm"`, `"reward-model"`, `"trainer"`, ...); checked on read. */
  kind: string;
  /** Steps done; names the directory (`step-00000012`). */
  step: number;
  /** The trainer's JSON state (plain JSON: finite numbers, strings, arrays, objects). */
  state: unknown;
  /** Writes the trainer's files into `dir` (the temporary directory, which exists). */
  write(dir: string): Promise<void>;
}

/** A `trainer_state.json` read back. */
export interface CheckpointStateFile<S = unknown> {
  /** The checkpoint directory. */
  path: string;
  /** The file read (for messages). */
  file: string;
  /** The folder format version it was written in (1: before this module). */
  version: number;
  kind: string;
  step: number;
  /** The trainer's state, unvalidated: the trainer checks its fields. */
  state: S;
}

function stepName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

async function exists(path: string): Promise<boolean> {
  return nodeFs.stat(path).then(
    () => true,
    () => false,
  );
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Writes a checkpoint for `contents.step` into `dir` (created if needed), points `latest.json` at it, then
 * removes leftovers of interrupted saves and all but the newest `keep` checkpoints (never the new one).
 * @returns the checkpoint's directory.
 * @throws Error naming the checkpoint when a file cannot be written (the previous checkpoint stays in force).
 */
export async function writeCheckpointDir(
  dir: string,
  contents: CheckpointContents,
  options: { keep?: number } = {},
): Promise<string> {
  const keep = options.keep ?? DEFAULT_KEEP_CHECKPOINTS;
  if (!Number.isInteger(keep) || keep < 1)
    throw new Error(`writeCheckpointDir: keep must be an integer >= 1 (got ${String(keep)}).`);
  if (!isCount(contents.step))
    throw new Error(`writeCheckpointDir: step must be an integer >= 0 (got ${String(contents.step)}).`);
  await nodeFs.mkdir(dir, { recursive: true });
  const name = stepName(contents.step);
  const tmp = nodePath.join(dir, `${name}.tmp-${randomHex(6)}`);
  const final = nodePath.join(dir, name);
  try {
    await nodeFs.mkdir(tmp);
    await contents.write(tmp);
    const file = {
      format: STATE_FORMAT,
      version: CHECKPOINT_FORMAT_VERSION,
      kind: contents.kind,
      step: contents.step,
      state: contents.state,
    };
    await writeFileAtomic(nodePath.join(tmp, TRAINER_STATE_FILE), JSON.stringify(file, null, 2) + '\n');
    if (await exists(final)) {
      // Same step saved again (a re-run): move the old one aside first; rename cannot replace a directory.
      const old = nodePath.join(dir, `${name}.old-${randomHex(6)}`);
      await nodeFs.rename(final, old);
      await nodeFs.rename(tmp, final);
      await nodeFs.rm(old, { recursive: true, force: true });
    } else {
      await nodeFs.rename(tmp, final);
    }
  } catch (err) {
    await nodeFs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`writing checkpoint ${final} failed: ${(err as Error).message}`, { cause: err });
  }
  const latest = {
    format: LATEST_FORMAT,
    version: CHECKPOINT_FORMAT_VERSION,
    checkpoint: name,
    step: contents.step,
  };
  await writeFileAtomic(nodePath.join(dir, LATEST_FILE), JSON.stringify(latest, null, 2) + '\n');
  await prune(dir, name, keep);
  return final;
}

/** Removes leftovers of interrupted saves and all but the newest `keep` checkpoints (never `current`). */
async function prune(dir: string, current: string, keep: number): Promise<void> {
  const entries = await nodeFs.readdir(dir);
  const steps = entries
    .filter((e) => STEP_RE.test(e))
    .sort((a, b) => Number(STEP_RE.exec(b)![1]) - Number(STEP_RE.exec(a)![1]) || (a < b ? 1 : -1));
  const keepSet = new Set([current, ...steps.slice(0, keep)]);
  for (const e of entries) {
    if (TMP_RE.test(e) || (STEP_RE.test(e) && !keepSet.has(e))) {
      await nodeFs.rm(nodePath.join(dir, e), { recursive: true, force: true });
    }
  }
}

/**
 * The checkpoint directory `latest.json` of `dir` points at, or undefined when `dir` holds no checkpoint (no
 * `latest.json`). Reads the pointers of format versions 1 and 2.
 * @throws Error naming the file and the field when `latest.json` is not a checkpoint pointer.
 */
export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  const path = nodePath.join(dir, LATEST_FILE);
  let text: string;
  try {
    text = await nodeFs.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let latest: Record<string, unknown>;
  try {
    latest = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message}).`);
  }
  const bad = (field: string, want: string, got: unknown): never => {
    throw new Error(
      `${path} is not a relign trainer checkpoint pointer: field '${field}' must be ${want} (got ${JSON.stringify(got)}). ` +
        'The file is damaged or was not written by relign; delete it to start over, or point it at a step-N directory.',
    );
  };
  if (latest === null || typeof latest !== 'object' || Array.isArray(latest))
    bad('(the top level)', 'an object', latest);
  if (latest.version !== undefined) {
    if (latest.format !== LATEST_FORMAT) bad('format', `"${LATEST_FORMAT}"`, latest.format);
    if (!isCount(latest.version)) bad('version', 'an integer', latest.version);
    if ((latest.version as number) > CHECKPOINT_FORMAT_VERSION) {
      throw new Error(
        `${path}: checkpoint format version ${String(latest.version)} was written by a newer relign; this one ` +
          `reads versions 1 to ${CHECKPOINT_FORMAT_VERSION}. Upgrade relign to resume from it.`,
      );
    }
  } else if (latest.format !== undefined && latest.format !== V1_TRAINER_LATEST) {
    bad('format', `"${LATEST_FORMAT}"`, latest.format);
  }
  const name = latest.checkpoint;
  if (typeof name !== 'string' || !STEP_RE.test(name))
    bad('checkpoint', 'the name of a step-N directory', name);
  return nodePath.join(dir, name as string);
}

/**
 * Reads `trainer_state.json` of the checkpoint directory `path` and checks its envelope (format, version, kind,
 * step); the trainer validates `state`. A version 1 file (the whole file was the trainer's state) is returned
 * with `version: 1` and the file itself as `state`, its kind taken from its `"kind"` (reward model), its
 * `"format"` (`"trainer"`) or else `"causal-lm"` (SFT and pretraining).
 *
 * @param options.kind the kinds the caller reads; another kind is refused with a message naming both.
 * @throws Error naming the file and the field that is wrong.
 */
export async function readCheckpointState(
  path: string,
  options: { kind?: string | readonly string[] } = {},
): Promise<CheckpointStateFile> {
  const file = nodePath.join(path, TRAINER_STATE_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await nodeFs.readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${file} (${(err as Error).message}); is ${path} a relign checkpoint?`, {
      cause: err,
    });
  }
  const fail = (field: string, want: string, got: unknown): never => {
    throw new Error(
      `${file}: field '${field}' must be ${want} (got ${JSON.stringify(got)}). The file is damaged or was not ` +
        'written by relign; resume from another checkpoint (step-N directory) or start a new run.',
    );
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    fail('(the top level)', 'an object', raw);
  const o = raw as Record<string, unknown>;
  let out: CheckpointStateFile;
  if (o.format === STATE_FORMAT) {
    if (!isCount(o.version) || o.version < 2) fail('version', 'an integer >= 2', o.version);
    if ((o.version as number) > CHECKPOINT_FORMAT_VERSION) {
      throw new Error(
        `${file}: checkpoint format version ${String(o.version)} was written by a newer relign; this one reads ` +
          `versions 1 to ${CHECKPOINT_FORMAT_VERSION}. Upgrade relign to resume from it.`,
      );
    }
    if (typeof o.kind !== 'string' || o.kind === '') fail('kind', 'a non-empty string', o.kind);
    if (!isCount(o.step)) fail('step', 'an integer >= 0', o.step);
    if (o.state === null || typeof o.state !== 'object' || Array.isArray(o.state))
      fail('state', 'an object', o.state);
    out = {
      path,
      file,
      version: o.version as number,
      kind: o.kind as string,
      step: o.step as number,
      state: o.state,
    };
  } else if (o.version === 1 && (o.format === undefined || o.format === V1_TRAINER_STATE)) {
    // Version 1: the file is the trainer's state; the trainer checks the rest of its fields.
    const kind =
      o.format === V1_TRAINER_STATE ? 'trainer' : typeof o.kind === 'string' ? o.kind : 'causal-lm';
    out = { path, file, version: 1, kind, step: isCount(o.step) ? o.step : -1, state: o };
  } else {
    return fail('format', `"${STATE_FORMAT}"`, o.format);
  }
  const kinds =
    options.kind === undefined ? undefined : typeof options.kind === 'string' ? [options.kind] : options.kind;
  if (kinds !== undefined && !kinds.includes(out.kind)) {
    throw new Error(
      `${file}: this is a '${out.kind}' checkpoint, not a${kinds.length > 1 ? ' ' + kinds.map((k) => `'${k}'`).join(' or ') : ` '${kinds[0]}'`} one; ` +
        'use another checkpoint directory.',
    );
  }
  return out;
}
