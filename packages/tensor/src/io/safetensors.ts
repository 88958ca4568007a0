/**
 * Hugging Face safetensors reading and writing.
 *
 * Layout: an 8-byte little-endian u64 `N`, then `N` bytes of UTF-8 JSON (possibly padded with trailing
 * spaces), then the data buffer. The JSON maps each tensor name to
 * `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the data buffer, little-endian,
 * row-major) plus an optional `__metadata__` map of string to string.
 *
 * tfjs computes in float32 and int32 only, so every stored dtype is widened or narrowed to one of these on
 * read (F16/BF16/F64 -> float32; I64/I16/I8/U8/BOOL -> int32), and writing produces F32 (or F16/BF16 on
 * request, rounded to nearest even) and I32. Host data
 * that needs more (float64 rewards, 64-bit counters) is written as F64 / I64 and read back exactly with
 * `{ exact: true }`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FileHandle } from 'node:fs/promises';
// `#platform`: node:fs/promises in Node.js, a stand-in that rejects in a browser bundle (parse bytes there).
import { nodeFs } from '../platform/index.js';
import { writeFileAtomic } from './atomic.js';
import { narrowFloat32 } from './safetensors-half.js';

/** Element types of the safetensors format that relign reads. */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor in host memory. `data.length` equals the product of `shape` (1 for a scalar, shape `[]`). */
export interface TensorData {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Host data in 64-bit types: F64 as `Float64Array`, I64 as `BigInt64Array` (written as such, read with `exact`). */
export type Tensor64Data =
  | { dtype: 'float64'; shape: number[]; data: Float64Array }
  | { dtype: 'int64'; shape: number[]; data: BigInt64Array };

/** Any tensor the writer takes, and the reader returns with `{ exact: true }`. */
export type AnyTensorData = TensorData | Tensor64Data;

/** A parsed safetensors file. `tensors` is in data-buffer order; `metadata` is `{}` when absent. */
export interface SafetensorsFile<T extends AnyTensorData = TensorData> {
  tensors: Map<string, T>;
  metadata: Record<string, string>;
}

export interface ReadSafetensorsOptions {
  /**
   * Reject a tensor holding NaN or ±Inf, naming it and the first bad element (for model weights, which are
   * never meant to hold them). Default false.
   */
  finite?: boolean;
  /**
   * Return F64 tensors as float64 (`Float64Array`) and I64 as int64 (`BigInt64Array`) instead of narrowing
   * them to the tfjs dtypes. Default false.
   */
  exact?: boolean;
  /**
   * Read only these tensors (their byte ranges; the rest of the file is never read). A name the file lacks
   * is an error. Default: every tensor.
   */
  names?: Iterable<string>;
}

/** How float32 tensors are stored by the writers: as is, or narrowed to float16 / bfloat16 (round to nearest even). */
export type SafetensorsFloatDtype = 'F32' | 'F16' | 'BF16';

/** Options of {@link serializeSafetensors} / {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** Storage dtype of float32 tensors (int32/float64/int64 are unaffected). Default 'F32'. */
  dtype?: SafetensorsFloatDtype;
}

/** Options that make the reader return 64-bit tensors unchanged. */
export type ExactReadOptions = ReadSafetensorsOptions & { exact: true };

const DTYPE_SIZE: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A header longer than this is certainly corrupt (real headers are kilobytes to a few megabytes). */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fmtSource(source: string | undefined): string {
  return source === undefined ? 'safetensors data' : `safetensors file ${source}`;
}

function headerError(source: string | undefined, tensor: string | undefined, problem: string): Error {
  const where = tensor === undefined ? '' : ` tensor ${JSON.stringify(tensor)}:`;
  return new Error(`${fmtSource(source)}:${where} ${problem}`);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses a safetensors file held in memory. Tensors stored as F32/I32 at 4-byte-aligned positions are
 * returned as views on `bytes` (no copy); everything else is copied/converted.
 *
 * @param bytes the whole file.
 * @param source a path or label used in error messages.
 * @throws Error naming the source, the tensor concerned and the problem, for any malformed header or a
 *   truncated file (the message then says "truncated").
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source: string | undefined,
  options: ExactReadOptions,
): SafetensorsFile<AnyTensorData>;
export function parseSafetensors(
  bytes: Uint8Array,
  source?: string,
  options?: ReadSafetensorsOptions,
): SafetensorsFile;
export function parseSafetensors(
  bytes: Uint8Array,
  source?: string,
  options: ReadSafetensorsOptions = {},
): SafetensorsFile<AnyTensorData> {
  const n = headerLength(bytes.subarray(0, 8), bytes.length, source);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, source);
  const { metadata } = header;
  const entries = selectEntries(header.entries, options.names, source);
  const tensors = new Map<string, AnyTensorData>();
  for (const e of entries) tensors.set(e.name, decode(bytes, 8 + n, e, source, options.exact === true));
  if (options.finite) assertFinite(tensors, source);
  return { tensors, metadata };
}

/** The entries named in `names` (all when undefined); throws naming the first name the file lacks. */
function selectEntries(
  entries: Entry[],
  names: Iterable<string> | undefined,
  source: string | undefined,
): Entry[] {
  if (names === undefined) return entries;
  const wanted = new Set(names);
  const out = entries.filter((e) => wanted.has(e.name));
  if (out.length !== wanted.size) {
    const have = new Set(entries.map((e) => e.name));
    const missing = [...wanted].find((n) => !have.has(n))!;
    throw headerError(source, missing, 'is not in this file (it holds ' + `${entries.length} tensors)`);
  }
  return out;
}

/**
 * Checks the 8-byte length prefix (`prefix`, fewer bytes when the file is shorter) of a file of `fileSize`
 * bytes; returns the header length.
 */
function headerLength(prefix: Uint8Array, fileSize: number, source: string | undefined): number {
  if (prefix.length < 8) {
    throw headerError(
      source,
      undefined,
      `file is ${fileSize} bytes, shorter than the 8-byte header-length prefix: it is truncated or not a safetensors file`,
    );
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen === 0n) {
    throw headerError(source, undefined, 'header length is 0; a safetensors header is at least "{}"');
  }
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw headerError(
      source,
      undefined,
      `header length ${headerLen} bytes is absurd (limit ${MAX_HEADER_BYTES}): the file is corrupt or not a safetensors file`,
    );
  }
  const n = Number(headerLen);
  if (8 + n > fileSize) {
    throw headerError(
      source,
      undefined,
      `header length ${n} bytes exceeds the ${fileSize - 8} bytes after the length prefix: the file is truncated or not a safetensors file`,
    );
  }
  return n;
}

/**
 * Parses and validates the JSON header (`headerBytes`) of a file whose data buffer has `dataLen` bytes;
 * returns the entries sorted by data offset, and the metadata.
 */
function parseHeader(
  headerBytes: Uint8Array,
  dataLen: number,
  source: string | undefined,
): { entries: Entry[]; metadata: Record<string, string> } {
  let header: unknown;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
    header = JSON.parse(text);
  } catch (err) {
    throw headerError(source, undefined, `header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw headerError(source, undefined, 'header JSON is not an object of tensor entries');
  }
  const duplicate = firstDuplicate(topLevelKeys(text));
  if (duplicate !== undefined) {
    throw headerError(
      source,
      duplicate,
      'appears twice in the header (a JSON parser keeps only the last entry): the file is corrupt or was ' +
        'written by a broken tool',
    );
  }

  const metadata = parseMetadata((header as Record<string, unknown>)[METADATA_KEY], source);

  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) continue;
    entries.push(parseEntry(name, raw, dataLen, source));
  }

  // Overlap check: walk the non-empty ranges by start offset. Gaps (unused bytes) are tolerated.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let prev: Entry | undefined;
  for (const e of entries) {
    if (e.begin === e.end) continue;
    if (prev !== undefined && e.begin < prev.end) {
      throw headerError(
        source,
        e.name,
        `data_offsets [${e.begin}, ${e.end}] overlap those of tensor ${JSON.stringify(prev.name)} ` +
          `[${prev.begin}, ${prev.end}]; each tensor needs its own byte range`,
      );
    }
    prev = e;
  }
  return { entries, metadata };
}

/**
 * The keys of the top-level object of a valid JSON text, duplicates included (`JSON.parse` keeps only the
 * last of duplicates). At depth 1 a string that follows `{` or `,` is a key; every other string is a value.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let prev = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && (prev === '{' || prev === ','))
        keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      prev = '"';
      i = j;
      continue;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    if (c !== ' ' && c !== '\n' && c !== '\r' && c !== '\t') prev = c;
  }
  return keys;
}

function firstDuplicate(keys: string[]): string | undefined {
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) return k;
    seen.add(k);
  }
  return undefined;
}

/** Throws naming the first tensor (and element) that holds NaN or ±Inf. */
function assertFinite(tensors: Map<string, AnyTensorData>, source: string | undefined): void {
  for (const [name, t] of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') continue;
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i]!)) {
        throw headerError(
          source,
          name,
          `element ${i} is ${d[i]}: the weights hold NaN/Inf (a diverged or damaged save); load an earlier ` +
            'checkpoint',
        );
      }
    }
  }
}

function parseMetadata(raw: unknown, source: string | undefined): Record<string, string> {
  if (raw === undefined) return {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw headerError(source, undefined, `"${METADATA_KEY}" must be an object of string values`);
  }
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') {
      throw headerError(
        source,
        undefined,
        `"${METADATA_KEY}" value for key ${JSON.stringify(k)} is ${JSON.stringify(v)}; metadata values must be strings`,
      );
    }
    out.push([k, v]);
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays plain data.
  return Object.fromEntries(out);
}

function parseEntry(name: string, raw: unknown, dataLen: number, source: string | undefined): Entry {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw headerError(source, name, 'entry must be an object {dtype, shape, data_offsets}');
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype)) {
    throw headerError(
      source,
      name,
      `unknown or unsupported dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPE_SIZE).join(', ')}`,
    );
  }
  const dt = dtype as SafetensorsDtype;
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
    throw headerError(
      source,
      name,
      `shape ${JSON.stringify(shape)} must be an array of non-negative integers ([] for a scalar)`,
    );
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !isNonNegInt(offsets[0]) ||
    !isNonNegInt(offsets[1]) ||
    offsets[0] > offsets[1]
  ) {
    throw headerError(
      source,
      name,
      `data_offsets ${JSON.stringify(offsets)} must be two non-negative integers [begin, end] with begin <= end`,
    );
  }
  const begin = offsets[0] as number;
  const end = offsets[1] as number;
  const count = product(shape as number[]);
  const expected = count * DTYPE_SIZE[dt];
  if (end - begin !== expected) {
    throw headerError(
      source,
      name,
      `data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${JSON.stringify(shape)} of ` +
        `${dt} needs ${count} x ${DTYPE_SIZE[dt]} = ${expected} bytes`,
    );
  }
  if (end > dataLen) {
    throw headerError(
      source,
      name,
      `data_offsets [${begin}, ${end}] reach past the end of the data buffer (${dataLen} bytes): ` +
        `the file is truncated (or its header is wrong); re-download or re-save it`,
    );
  }
  return { name, dtype: dt, shape: (shape as number[]).slice(), begin, end };
}

/**
 * Returns the bytes `[from, to)` of `bytes` as an ArrayBuffer region aligned for `size`-byte elements
 * and in host byte order: a view when possible, otherwise a copy (unaligned offsets, big-endian hosts).
 */
function alignedRegion(
  bytes: Uint8Array,
  from: number,
  to: number,
  size: number,
): { buffer: ArrayBufferLike; offset: number; view: boolean } {
  const abs = bytes.byteOffset + from;
  if (abs % size === 0 && (LITTLE_ENDIAN || size === 1)) {
    return { buffer: bytes.buffer, offset: abs, view: true };
  }
  const copy = bytes.slice(from, to); // fresh buffer at offset 0: aligned for any element size
  if (!LITTLE_ENDIAN && size > 1) {
    for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
  }
  return { buffer: copy.buffer, offset: 0, view: false };
}

let halfTable: Float32Array | undefined;

/**
 * IEEE 754 binary16 -> number. Subnormals are mant * 2^-24; exponent 31 is Inf (mant 0) or NaN.
 */
export function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function f16Table(): Float32Array {
  // 65536 entries (256 KiB), built once: a lookup per element beats the branches on large checkpoints.
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = float16ToFloat32(i);
  }
  return halfTable;
}

function decode(
  bytes: Uint8Array,
  dataStart: number,
  e: Entry,
  source: string | undefined,
  exact: boolean,
): AnyTensorData {
  const size = DTYPE_SIZE[e.dtype];
  const count = (e.end - e.begin) / size;
  const from = dataStart + e.begin;
  const to = dataStart + e.end;
  const shape = e.shape;
  if (count === 0) {
    if (exact && e.dtype === 'F64') return { dtype: 'float64', shape, data: new Float64Array(0) };
    if (exact && e.dtype === 'I64') return { dtype: 'int64', shape, data: new BigInt64Array(0) };
    const isFloat = e.dtype === 'F64' || e.dtype === 'F32' || e.dtype === 'F16' || e.dtype === 'BF16';
    return isFloat
      ? { dtype: 'float32', shape, data: new Float32Array(0) }
      : { dtype: 'int32', shape, data: new Int32Array(0) };
  }
  const r = alignedRegion(bytes, from, to, size);
  switch (e.dtype) {
    case 'F32':
      return { dtype: 'float32', shape, data: new Float32Array(r.buffer, r.offset, count) };
    case 'I32':
      return { dtype: 'int32', shape, data: new Int32Array(r.buffer, r.offset, count) };
    case 'F64':
      if (exact) return { dtype: 'float64', shape, data: new Float64Array(r.buffer, r.offset, count) };
      return {
        dtype: 'float32',
        shape,
        data: Float32Array.from(new Float64Array(r.buffer, r.offset, count)),
      };
    case 'F16': {
      const src = new Uint16Array(r.buffer, r.offset, count);
      const table = f16Table();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[src[i]!]!;
      return { dtype: 'float32', shape, data: out };
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place.
      const src = new Uint16Array(r.buffer, r.offset, count);
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = src[i]! << 16;
      return { dtype: 'float32', shape, data: out };
    }
    case 'I64': {
      if (exact) return { dtype: 'int64', shape, data: new BigInt64Array(r.buffer, r.offset, count) };
      // Read as (lo, hi) int32 pairs: the value fits int32 exactly when hi is the sign extension of lo.
      const src = new Int32Array(r.buffer, r.offset, count * 2);
      const out = new Int32Array(count);
      const [loIdx, hiIdx] = LITTLE_ENDIAN ? [0, 1] : [1, 0];
      for (let i = 0; i < count; i++) {
        const lo = src[2 * i + loIdx]!;
        const hi = src[2 * i + hiIdx]!;
        if (hi !== lo >> 31) {
          const value = new BigInt64Array(r.buffer, r.offset + 8 * i, 1)[0];
          throw headerError(
            source,
            e.name,
            `I64 element ${i} = ${value} is outside the int32 range tfjs supports ` +
              `[-2147483648, 2147483647]; store this tensor as I32 or F32`,
          );
        }
        out[i] = lo;
      }
      return { dtype: 'int32', shape, data: out };
    }
    case 'I16':
      return { dtype: 'int32', shape, data: Int32Array.from(new Int16Array(r.buffer, r.offset, count)) };
    case 'I8':
      return { dtype: 'int32', shape, data: Int32Array.from(new Int8Array(r.buffer, r.offset, count)) };
    case 'U8':
      return { dtype: 'int32', shape, data: Int32Array.from(new Uint8Array(r.buffer, r.offset, count)) };
    case 'BOOL': {
      const src = new Uint8Array(r.buffer, r.offset, count);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = src[i] === 0 ? 0 : 1;
      return { dtype: 'int32', shape, data: out };
    }
  }
}

function entriesOf<T>(tensors: Record<string, T> | Map<string, T>): [string, T][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

/** How each writable dtype is stored: the safetensors dtype and the array type it needs. */
const WRITE_AS = {
  float32: { dtype: 'F32', array: Float32Array },
  int32: { dtype: 'I32', array: Int32Array },
  float64: { dtype: 'F64', array: Float64Array },
  int64: { dtype: 'I64', array: BigInt64Array },
} as const;

function validateForWrite(name: string, t: AnyTensorData): void {
  const where = `serializeSafetensors: tensor ${JSON.stringify(name)}:`;
  if (name === METADATA_KEY) {
    throw new Error(`${where} "${METADATA_KEY}" is reserved for metadata; rename the tensor`);
  }
  const as = Object.hasOwn(WRITE_AS, t.dtype) ? WRITE_AS[t.dtype] : undefined;
  if (as === undefined) {
    throw new Error(
      `${where} dtype ${JSON.stringify(t.dtype)} cannot be written; use 'float32', 'int32', 'float64' or 'int64'`,
    );
  }
  if (!(t.data instanceof as.array)) {
    throw new Error(
      `${where} dtype '${t.dtype}' needs data as ${as.array.name}, ` +
        `got ${(t.data as object)?.constructor?.name ?? typeof t.data}`,
    );
  }
  if (!Array.isArray(t.shape) || !t.shape.every(isNonNegInt)) {
    throw new Error(`${where} shape ${JSON.stringify(t.shape)} must be an array of non-negative integers`);
  }
  const count = product(t.shape);
  if (t.data.length !== count) {
    throw new Error(
      `${where} data has ${t.data.length} elements but shape ${JSON.stringify(t.shape)} needs ${count}`,
    );
  }
}

/**
 * Serializes tensors to safetensors bytes. Tensors are laid out in sorted-name order (UTF-16 code unit
 * order), float32 as F32, int32 as I32, float64 as F64 and int64 as I64; the JSON header is padded with
 * spaces so that the data buffer starts at a multiple of 8 bytes (every tensor is then 4-byte aligned for
 * zero-copy reads; an 8-byte tensor after an odd-length 4-byte one is copied on read).
 *
 * @param tensors name -> tensor data; `data.length` must equal product(shape).
 * @param metadata optional string -> string map, stored as `__metadata__` (omitted when empty).
 * @param options `dtype: 'F16' | 'BF16'` stores float32 tensors narrowed (round to nearest even).
 */
export function serializeSafetensors(
  tensors: Record<string, AnyTensorData> | Map<string, AnyTensorData>,
  metadata?: Record<string, string>,
  options: WriteSafetensorsOptions = {},
): Uint8Array {
  const floatAs = options.dtype ?? 'F32';
  if (floatAs !== 'F32' && floatAs !== 'F16' && floatAs !== 'BF16') {
    throw new Error(
      `serializeSafetensors: dtype ${JSON.stringify(floatAs)} is not supported for float32 tensors; use 'F32', 'F16' or 'BF16'`,
    );
  }
  const sorted = entriesOf(tensors).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, t] of sorted) validateForWrite(name, t);
  // Narrowed tensors become Uint16Array bit patterns, written like any other typed array.
  const list = sorted.map(([name, t]) => {
    if (t.dtype !== 'float32' || floatAs === 'F32') return [name, t, WRITE_AS[t.dtype].dtype] as const;
    const narrowed = { ...t, data: narrowFloat32(t.data as Float32Array, floatAs) };
    return [name, narrowed, floatAs] as const;
  });

  // Built by hand rather than with JSON.stringify on one object: JS objects put integer-like keys
  // ("0", "1") first, and the header should list tensors in the order their data is laid out.
  const parts: string[] = [];
  const meta = Object.entries(metadata ?? {});
  if (meta.length > 0) {
    for (const [k, v] of meta) {
      if (typeof v !== 'string') {
        throw new Error(
          `serializeSafetensors: metadata value for key ${JSON.stringify(k)} must be a string, got ${typeof v}`,
        );
      }
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(Object.fromEntries(meta))}`);
  }
  let offset = 0;
  for (const [name, t, dtype] of list) {
    const nbytes = t.data.byteLength;
    const info = {
      dtype,
      shape: t.shape,
      data_offsets: [offset, offset + nbytes],
    };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += nbytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const out = new Uint8Array(8 + headerLen + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen); // trailing spaces are valid JSON whitespace

  let pos = 8 + headerLen;
  for (const [, t] of list) {
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    } else if (t.data instanceof Float32Array) {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(pos + 4 * i, t.data[i]!, true);
    } else if (t.data instanceof Int32Array) {
      for (let i = 0; i < t.data.length; i++) view.setInt32(pos + 4 * i, t.data[i]!, true);
    } else if (t.data instanceof Uint16Array) {
      for (let i = 0; i < t.data.length; i++) view.setUint16(pos + 2 * i, t.data[i]!, true);
    } else if (t.data instanceof Float64Array) {
      for (let i = 0; i < t.data.length; i++) view.setFloat64(pos + 8 * i, t.data[i]!, true);
    } else {
      for (let i = 0; i < t.data.length; i++) view.setBigInt64(pos + 8 * i, t.data[i]!, true);
    }
    pos += t.data.byteLength;
  }
  return out;
}

/**
 * Reads and parses a safetensors file: the 8-byte length prefix first, then the header, which is validated
 * before any tensor data is read; then only each tensor's byte range (so a corrupt or huge file is refused
 * without reading it, and gaps are never read). Each tensor gets its own buffer (F32/I32 returned as views).
 * @throws Error naming `path` when the file cannot be read or is malformed (see {@link parseSafetensors}).
 */
export async function readSafetensors(
  path: string,
  options: ExactReadOptions,
): Promise<SafetensorsFile<AnyTensorData>>;
export async function readSafetensors(
  path: string,
  options?: ReadSafetensorsOptions,
): Promise<SafetensorsFile>;
export async function readSafetensors(
  path: string,
  options: ReadSafetensorsOptions = {},
): Promise<SafetensorsFile<AnyTensorData>> {
  return withSafetensorsHeader(path, async (fh, dataStart, header) => {
    const entries = selectEntries(header.entries, options.names, path);
    const tensors = new Map<string, AnyTensorData>();
    for (const e of entries) {
      const bytes = await readAt(fh, dataStart + e.begin, e.end - e.begin, path);
      tensors.set(
        e.name,
        decode(bytes, 0, { ...e, begin: 0, end: e.end - e.begin }, path, options.exact === true),
      );
    }
    if (options.finite) assertFinite(tensors, path);
    return { tensors, metadata: header.metadata };
  });
}

/**
 * Opens `path`, reads and validates its header, and runs `use` with the open file, the byte offset of the data
 * buffer and the parsed header; the file is closed afterwards, whatever `use` does.
 * @throws Error naming `path` when the file cannot be opened or its header is invalid.
 */
async function withSafetensorsHeader<T>(
  path: string,
  use: (fh: FileHandle, dataStart: number, header: ReturnType<typeof parseHeader>) => Promise<T>,
): Promise<T> {
  let fh: FileHandle;
  try {
    fh = await nodeFs.open(path, 'r');
  } catch (err) {
    throw new Error(`cannot read safetensors file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = (await fh.stat()).size;
    const n = headerLength(await readAt(fh, 0, Math.min(8, size), path), size, path);
    return await use(fh, 8 + n, parseHeader(await readAt(fh, 8, n, path), size - 8 - n, path));
  } finally {
    await fh.close();
  }
}

/** One tensor as the header describes it (no data). */
export interface SafetensorsHeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

/**
 * Reads and validates only the header of a safetensors file (the data is not read): tensor names, stored
 * dtypes and shapes in data-buffer order, and the metadata. For size checks and listings before loading.
 * @throws Error naming `path`, as {@link readSafetensors}.
 */
export async function readSafetensorsHeader(
  path: string,
): Promise<{ entries: SafetensorsHeaderEntry[]; metadata: Record<string, string> }> {
  return withSafetensorsHeader(path, async (_fh, _dataStart, { entries, metadata }) => ({
    entries: entries.map(({ name, dtype, shape }) => ({ name, dtype, shape })),
    metadata,
  }));
}

/** `length` bytes of the file at `position`, into a new buffer. */
async function readAt(fh: FileHandle, position: number, length: number, path: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, length - done, position + done);
    if (bytesRead === 0) {
      // The file shrank after its size was taken (header offsets were checked against that size).
      throw headerError(
        path,
        undefined,
        `ends at byte ${position + done}, before ${position + length}: it is truncated`,
      );
    }
    done += bytesRead;
  }
  return out;
}

/**
 * Serializes (see {@link serializeSafetensors}) and writes atomically (see {@link writeFileAtomic}):
 * an existing file at `path` is replaced only once the new one is complete on disk.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, AnyTensorData> | Map<string, AnyTensorData>,
  metadata?: Record<string, string>,
  options?: WriteSafetensorsOptions,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata, options));
}

/**
 * Reads a safetensors file into tfjs tensors on the active backend (float32 or int32, shapes as stored).
 * The caller owns the returned tensors and must dispose them.
 */
export async function loadTensors(
  path: string,
  options: ReadSafetensorsOptions = {},
): Promise<Map<string, tf.Tensor>> {
  // tfjs has no 64-bit dtypes: F64/I64 are narrowed (the default read).
  const file = await readSafetensors(path, { ...options, exact: false });
  const out = new Map<string, tf.Tensor>();
  try {
    for (const [name, t] of file.tensors) out.set(name, tf.tensor(t.data, t.shape, t.dtype));
  } catch (err) {
    for (const t of out.values()) t.dispose();
    throw err;
  }
  return out;
}

/**
 * Downloads tfjs tensors and writes them atomically as safetensors. float32 tensors are stored as F32,
 * int32 as I32 and bool as I32 0/1 (so they load back as int32). The tensors are not disposed.
 */
export async function saveTensors(
  path: string,
  tensors: Record<string, tf.Tensor> | Map<string, tf.Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const data = new Map<string, TensorData>();
  for (const [name, t] of entriesOf(tensors)) {
    if (!(t instanceof tf.Tensor)) {
      throw new Error(`saveTensors: ${JSON.stringify(name)} is not a tf.Tensor`);
    }
    if (t.isDisposed) {
      throw new Error(`saveTensors: tensor ${JSON.stringify(name)} is disposed; save before disposing it`);
    }
    const shape = t.shape.slice();
    if (t.dtype === 'float32') {
      data.set(name, { dtype: 'float32', shape, data: (await t.data()) as Float32Array });
    } else if (t.dtype === 'int32') {
      data.set(name, { dtype: 'int32', shape, data: (await t.data()) as Int32Array });
    } else if (t.dtype === 'bool') {
      data.set(name, { dtype: 'int32', shape, data: Int32Array.from((await t.data()) as Uint8Array) });
    } else {
      throw new Error(
        `saveTensors: tensor ${JSON.stringify(name)} has dtype ${t.dtype}; only float32, int32 and bool can be saved`,
      );
    }
  }
  await writeSafetensors(path, data, metadata);
}
