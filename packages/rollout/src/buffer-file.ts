/**
 * On-disk format of a {@link ReplayBuffer} (`save(dir)` / `ReplayBuffer.load(dir)`), version 1.
 *
 * `dir/buffer.json`, the manifest (UTF-8 JSON):
 * ```json
 * { "format": "relign-replay-buffer", "version": 1,
 *   "data": "buffer-<id>.safetensors",           // the data file of this save, in dir
 *   "capacity": 64, "responsesPerPrompt": 2, "nextSerial": 130, "numGroups": 64,
 *   "fields": { "refLogprobs": true, "values": false },
 *   "options": [ { ...SamplingOptions } ] }      // distinct sampling options, indexed per group
 * ```
 * `dir/buffer-<id>.safetensors`, with N groups of G responses (groups oldest first, responses in order;
 * variable-length arrays concatenated):
 *
 * | tensor            | dtype | shape      | content                                                  |
 * | ----------------- | ----- | ---------- | -------------------------------------------------------- |
 * | `serial`          | I32   | [N]        | group serial numbers                                     |
 * | `policy_version`  | I32   | [N]        | policy version that sampled the group                    |
 * | `options_index`   | I32   | [N]        | index into the manifest's `options`                      |
 * | `prompt_length`   | I32   | [N]        | prompt tokens per group                                  |
 * | `prompt_tokens`   | I32   | [Σ prompt] | prompts, concatenated                                    |
 * | `response_length` | I32   | [N, G]     | tokens per response (stop token included)                |
 * | `response_tokens` | I32   | [Σ resp]   | responses, concatenated                                  |
 * | `logprobs`        | F32   | [Σ resp]   | sampling log-probs, same layout                          |
 * | `ref_logprobs`    | F32   | [Σ resp]   | only when `fields.refLogprobs`                           |
 * | `values`          | F32   | [Σ resp]   | only when `fields.values`                                |
 * | `reward`          | F64   | [N, G]     | rewards, exact (float64)                                 |
 * | `ended_with_eos`  | I32   | [N, G]     | 0/1                                                      |
 * | `truncated`       | I32   | [N, G]     | 0/1                                                      |
 *
 * Older files still load: those with `reward` F32 plus `reward_f64` I32 [N, G, 2] (each reward's (low, high)
 * little-endian 32-bit words, written while the safetensors writer had no F64) take their rewards from
 * `reward_f64`; the oldest, with only the F32 `reward`, from that. (A reader from before F64 narrows the F64
 * `reward` to float32, as it read the F32 one.)
 *
 * Crash safety: the data file gets a new name on every save and is written (atomically) before the
 * manifest (atomically) switches to it; older data files are deleted only after that. A crash at any
 * point leaves a manifest that names a complete data file of the same save.
 */
import {
  readSafetensors,
  writeFileAtomic,
  writeSafetensors,
  type AnyTensorData,
  type TensorData,
  nodeFs,
  nodePath,
  randomHex,
} from '@relign/tensor';
import { checkDistribution, type SamplingOptions } from './options.js';
import type { RolloutGroup } from './replay-buffer.js';

// File access through @relign/tensor: node:fs in Node.js, a stand-in that rejects in a browser bundle.
const { mkdir, readdir, readFile, rm } = nodeFs;
const { join } = nodePath;

export const BUFFER_MANIFEST = 'buffer.json';
const FORMAT = 'relign-replay-buffer';
const VERSION = 1;
const DATA_RE = /^buffer-[0-9a-f]+\.safetensors$/;
/** Largest log-probability a file may hold: 0, plus an allowance for float rounding. */
const LOGPROB_TOLERANCE = 1e-6;

/** The float64 values of `reward_f64`'s (low, high) little-endian 32-bit words (files written before F64). */
function wordsFloat64(words: Int32Array): Float64Array {
  const out = new Float64Array(words.length / 2);
  const view = new DataView(new ArrayBuffer(8));
  for (let i = 0; i < out.length; i++) {
    view.setInt32(0, words[2 * i]!, true);
    view.setInt32(4, words[2 * i + 1]!, true);
    out[i] = view.getFloat64(0, true);
  }
  return out;
}

/** What a buffer file holds. */
export interface BufferState {
  capacity: number;
  responsesPerPrompt: number;
  nextSerial: number;
  groups: RolloutGroup[];
}

function concat<T extends Int32Array | Float32Array | Float64Array>(
  ctor: { new (n: number): T },
  parts: ArrayLike<number>[],
): T {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new ctor(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Writes `state` to `dir` in format version 1 (see the file comment). */
export async function writeBufferDir(dir: string, state: BufferState): Promise<void> {
  const { groups, responsesPerPrompt: G } = state;
  const N = groups.length;
  const optionKeys = new Map<string, number>();
  const options: SamplingOptions[] = [];
  const optionsIndex = new Int32Array(N);
  groups.forEach((g, i) => {
    const key = JSON.stringify(g.options);
    let k = optionKeys.get(key);
    if (k === undefined) {
      k = options.length;
      optionKeys.set(key, k);
      options.push(g.options);
    }
    optionsIndex[i] = k;
  });
  const fields = {
    refLogprobs: groups[0]?.refLogprobs !== undefined,
    values: groups[0]?.values !== undefined,
  };
  const i32 = (shape: number[], data: Int32Array): TensorData => ({ dtype: 'int32', shape, data });
  const f32 = (shape: number[], data: Float32Array): TensorData => ({ dtype: 'float32', shape, data });
  const f64 = (shape: number[], data: Float64Array): AnyTensorData => ({ dtype: 'float64', shape, data });
  const responses = groups.flatMap((g) => g.responseTokens);
  const total = responses.reduce((a, r) => a + r.length, 0);
  const tensors = new Map<string, AnyTensorData>([
    [
      'serial',
      i32(
        [N],
        Int32Array.from(groups, (g) => g.serial),
      ),
    ],
    [
      'policy_version',
      i32(
        [N],
        Int32Array.from(groups, (g) => g.policyVersion),
      ),
    ],
    ['options_index', i32([N], optionsIndex)],
    [
      'prompt_length',
      i32(
        [N],
        Int32Array.from(groups, (g) => g.promptTokens.length),
      ),
    ],
    [
      'prompt_tokens',
      i32(
        [groups.reduce((a, g) => a + g.promptTokens.length, 0)],
        concat(
          Int32Array,
          groups.map((g) => g.promptTokens),
        ),
      ),
    ],
    [
      'response_length',
      i32(
        [N, G],
        Int32Array.from(responses, (r) => r.length),
      ),
    ],
    ['response_tokens', i32([total], concat(Int32Array, responses))],
    [
      'logprobs',
      f32(
        [total],
        concat(
          Float32Array,
          groups.flatMap((g) => g.logprobs),
        ),
      ),
    ],
    // Rewards stay exact through a save (P3O's r1 − r2, docs/algorithms.md §1.10).
    [
      'reward',
      f64(
        [N, G],
        concat(
          Float64Array,
          groups.map((g) => g.rewards),
        ),
      ),
    ],
    [
      'ended_with_eos',
      i32(
        [N, G],
        concat(
          Int32Array,
          groups.map((g) => g.endedWithEos),
        ),
      ),
    ],
    [
      'truncated',
      i32(
        [N, G],
        concat(
          Int32Array,
          groups.map((g) => g.truncated),
        ),
      ),
    ],
  ]);
  if (fields.refLogprobs)
    tensors.set(
      'ref_logprobs',
      f32(
        [total],
        concat(
          Float32Array,
          groups.flatMap((g) => g.refLogprobs!),
        ),
      ),
    );
  if (fields.values)
    tensors.set(
      'values',
      f32(
        [total],
        concat(
          Float32Array,
          groups.flatMap((g) => g.values!),
        ),
      ),
    );

  await mkdir(dir, { recursive: true });
  const data = `buffer-${randomHex(8)}.safetensors`;
  await writeSafetensors(join(dir, data), tensors, { format: FORMAT, version: String(VERSION) });
  const manifest = {
    format: FORMAT,
    version: VERSION,
    data,
    capacity: state.capacity,
    responsesPerPrompt: G,
    nextSerial: state.nextSerial,
    numGroups: N,
    fields,
    options,
  };
  await writeFileAtomic(join(dir, BUFFER_MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  // Older data files are garbage now that the manifest names the new one.
  for (const name of await readdir(dir)) {
    if (DATA_RE.test(name) && name !== data) await rm(join(dir, name), { force: true });
  }
}

/**
 * Reads a buffer directory (format version 1), checking every size and the values the format constrains (token
 * ids >= 0 and, given `vocabSize`, below it; 0/1 flags; log-probs <= 0); groups are not yet validated.
 */
export async function readBufferDir(dir: string, limits: { vocabSize?: number } = {}): Promise<BufferState> {
  const { vocabSize } = limits;
  const manifestPath = join(dir, BUFFER_MANIFEST);
  const fail = (msg: string): never => {
    throw new Error(`ReplayBuffer.load: ${msg}`);
  };
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    return fail(
      `cannot read ${manifestPath} (${(err as Error).message}); save the buffer with buffer.save(dir)`,
    );
  }
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    return fail(`${manifestPath} is not valid JSON (${(err as Error).message})`);
  }
  if (m === null || typeof m !== 'object' || m.format !== FORMAT) {
    return fail(`${manifestPath} is not a replay-buffer manifest ("format" must be "${FORMAT}")`);
  }
  if (m.version !== VERSION) {
    // Types too: "1" (a string) and 1 print alike.
    return fail(
      `${manifestPath}: unsupported "version" ${JSON.stringify(m.version)} (${typeof m.version}); this reader ` +
        `knows ${VERSION} (number)`,
    );
  }
  const int = (name: string, min: number): number => {
    const v = m[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      return fail(`${manifestPath}: "${name}" must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const capacity = int('capacity', 1);
  const G = int('responsesPerPrompt', 1);
  const nextSerial = int('nextSerial', 0);
  const N = int('numGroups', 0);
  if (typeof m.data !== 'string' || !DATA_RE.test(m.data)) {
    return fail(
      `${manifestPath}: "data" must name a buffer-<id>.safetensors file, got ${JSON.stringify(m.data)}`,
    );
  }
  const f = m.fields as Record<string, unknown> | undefined;
  if (
    f === null ||
    typeof f !== 'object' ||
    typeof f.refLogprobs !== 'boolean' ||
    typeof f.values !== 'boolean'
  ) {
    return fail(`${manifestPath}: "fields" must be {"refLogprobs": boolean, "values": boolean}`);
  }
  if (!Array.isArray(m.options) || !m.options.every((o) => o !== null && typeof o === 'object')) {
    return fail(`${manifestPath}: "options" must be an array of sampling-option objects`);
  }
  const options = m.options as SamplingOptions[];
  options.forEach((o, i) => {
    try {
      checkDistribution(o, 'options');
    } catch (err) {
      fail(`${manifestPath}: options[${i}]: ${(err as Error).message}`);
    }
    if (
      !Number.isSafeInteger(o.padTokenId) ||
      o.padTokenId < 0 ||
      !Number.isSafeInteger(o.maxNewTokens) ||
      o.maxNewTokens < 1
    ) {
      fail(`${manifestPath}: options[${i}] needs integer padTokenId >= 0 and maxNewTokens >= 1`);
    }
  });

  const dataPath = join(dir, m.data);
  const file = await readSafetensors(dataPath, { exact: true }).catch((err: Error) =>
    fail(`${err.message} (named by ${manifestPath})`),
  );
  const tensor = (
    name: string,
    dtype: AnyTensorData['dtype'],
    size: number,
    shape: string,
  ): AnyTensorData['data'] => {
    const t = file.tensors.get(name);
    if (t === undefined) return fail(`${dataPath} has no tensor "${name}"`);
    if (t.dtype !== dtype) return fail(`${dataPath}: tensor "${name}" is ${t.dtype}, expected ${dtype}`);
    if (t.data.length !== size) {
      return fail(`${dataPath}: tensor "${name}" has ${t.data.length} elements, expected ${shape} = ${size}`);
    }
    return t.data;
  };
  const i32 = (name: string, size: number, shape: string) => tensor(name, 'int32', size, shape) as Int32Array;
  const f32 = (name: string, size: number, shape: string) =>
    tensor(name, 'float32', size, shape) as Float32Array;
  const serial = i32('serial', N, `[${N}]`);
  const version = i32('policy_version', N, `[${N}]`);
  const optIdx = i32('options_index', N, `[${N}]`);
  const promptLength = i32('prompt_length', N, `[${N}]`);
  const responseLength = i32('response_length', N * G, `[${N}, ${G}]`);
  let sumPrompt = 0;
  for (const l of promptLength) {
    if (l < 1) fail(`${dataPath}: prompt_length has ${l}; every prompt has at least one token`);
    sumPrompt += l;
  }
  let sumResp = 0;
  for (const l of responseLength) {
    if (l < 1) fail(`${dataPath}: response_length has ${l}; every response has at least one token`);
    sumResp += l;
  }
  const promptTokens = i32('prompt_tokens', sumPrompt, 'Σ prompt_length');
  const responseTokens = i32('response_tokens', sumResp, 'Σ response_length');
  const logprobs = f32('logprobs', sumResp, 'Σ response_length');
  const ref = f.refLogprobs ? f32('ref_logprobs', sumResp, 'Σ response_length') : undefined;
  const values = f.values ? f32('values', sumResp, 'Σ response_length') : undefined;
  // F64 `reward`; older files: the I32 words of `reward_f64`, or (the oldest) only an F32 `reward`.
  const reward = file.tensors.has('reward_f64')
    ? wordsFloat64(i32('reward_f64', N * G * 2, `[${N}, ${G}, 2]`))
    : file.tensors.get('reward')?.dtype === 'float32'
      ? Float64Array.from(f32('reward', N * G, `[${N}, ${G}]`))
      : (tensor('reward', 'float64', N * G, `[${N}, ${G}]`) as Float64Array);
  const eos = i32('ended_with_eos', N * G, `[${N}, ${G}]`);
  const trunc = i32('truncated', N * G, `[${N}, ${G}]`);

  // Values a valid save cannot hold, each rejected with its tensor and row (the file was edited or damaged).
  const tokenIds = (name: string, a: Int32Array, row: string): void => {
    for (let t = 0; t < a.length; t++) {
      const id = a[t]!;
      if (id < 0 || (vocabSize !== undefined && id >= vocabSize)) {
        const range = vocabSize !== undefined ? `[0, ${vocabSize}) (the model's vocab_size)` : '>= 0';
        fail(`${dataPath}: ${name} of ${row}, position ${t}: token id ${id} is out of range ${range}`);
      }
    }
  };
  const logprobRows = (name: string, a: Float32Array, row: string): void => {
    for (let t = 0; t < a.length; t++) {
      // Log-probabilities are <= 0; the allowance covers float rounding only.
      if (a[t]! > LOGPROB_TOLERANCE) {
        fail(`${dataPath}: ${name} of ${row}, position ${t}: ${a[t]} is positive; a log-probability is <= 0`);
      }
    }
  };
  const flags = (name: string, a: Int32Array): void => {
    a.forEach((x, k) => {
      if (x !== 0 && x !== 1) {
        fail(
          `${dataPath}: ${name} of group ${Math.floor(k / G)}, response ${k % G} is ${x}; it must be 0 or 1`,
        );
      }
    });
  };
  flags('ended_with_eos', eos);
  flags('truncated', trunc);

  const groups: RolloutGroup[] = [];
  let po = 0;
  let ro = 0;
  for (let i = 0; i < N; i++) {
    const opt = options[optIdx[i]!];
    if (opt === undefined)
      fail(
        `${dataPath}: options_index[${i}] = ${optIdx[i]} is outside the manifest's ${options.length} options`,
      );
    if (serial[i]! < 0 || version[i]! < 0) {
      fail(
        `${dataPath}: group ${i} has serial ${serial[i]} / policy_version ${version[i]}; both must be >= 0`,
      );
    }
    const lp = promptLength[i]!;
    const g: RolloutGroup = {
      serial: serial[i]!,
      policyVersion: version[i]!,
      options: structuredClone(opt!),
      promptTokens: promptTokens.slice(po, po + lp),
      responseTokens: [],
      logprobs: [],
      rewards: reward.slice(i * G, (i + 1) * G),
      endedWithEos: Uint8Array.from(eos.subarray(i * G, (i + 1) * G)),
      truncated: Uint8Array.from(trunc.subarray(i * G, (i + 1) * G)),
    };
    if (ref) g.refLogprobs = [];
    if (values) g.values = [];
    tokenIds('prompt_tokens', g.promptTokens as Int32Array, `group ${i}`);
    po += lp;
    for (let j = 0; j < G; j++) {
      const len = responseLength[i * G + j]!;
      const row = `group ${i}, response ${j}`;
      tokenIds('response_tokens', responseTokens.subarray(ro, ro + len), row);
      logprobRows('logprobs', logprobs.subarray(ro, ro + len), row);
      if (ref) logprobRows('ref_logprobs', ref.subarray(ro, ro + len), row);
      g.responseTokens.push(responseTokens.slice(ro, ro + len));
      g.logprobs.push(logprobs.slice(ro, ro + len));
      g.refLogprobs?.push(ref!.slice(ro, ro + len));
      g.values?.push(values!.slice(ro, ro + len));
      ro += len;
    }
    groups.push(g);
  }
  return { capacity, responsesPerPrompt: G, nextSerial, groups };
}
