/**
 * The GEMM on several threads: Node `worker_threads`, or Web Workers in a cross-origin-isolated browser
 * context. The tfjs wasm backend's memory is not shared, so the workers run the same assembled kernels on
 * their own shared `WebAssembly.Memory`: a large product's operands are copied in (O(MK + KN + MN) bytes
 * against O(MNK) work), each thread computes a block of whole output rows, columns or batch items, and C is
 * copied back. Every output element is computed by the same kernel over the same K blocks in the same order
 * as on one thread, so results are identical for any thread count.
 *
 * Synchronisation is Atomics.wait/notify on a control SharedArrayBuffer: the calling thread posts the job,
 * claims chunks of it like the workers do and waits until all are done; a worker that the OS does not
 * schedule in time (a loaded machine) just leaves its chunks to the others. The caller must be allowed to
 * block: Node's main thread and workers are, and so is a browser's dedicated worker, but a page's main
 * thread may not `Atomics.wait` (it throws), so a page computes on one thread unless relign runs in a worker.
 *
 * Threads: `setWasmThreads(n)`, else `RELIGN_THREADS` (env, Node), else every core
 * (`os.availableParallelism()`, `navigator.hardwareConcurrency`) where workers can run, 1 elsewhere.
 * 1 thread is exactly the single-threaded path.
 */
import { kernelModuleBytes, MR, NR, type KernelExports } from './kernel-module.js';

/**
 * Products below `minMacs` multiply-adds stay on one thread (waking workers costs ~10-50 µs), and so do
 * products with fewer than `minMacsPerCopied` multiply-adds per float copied in and out (a small K: the
 * copies would eat the gain; measured on attention-shaped 64 x [64x32 @ 32x64], 16 per float: slower); each
 * product is cut into `chunksPerThread` chunks per thread, so that a thread the OS does not schedule in
 * time (a loaded machine) leaves its chunks to the others. A decode step's products on operands already in
 * the shared memory (`sharedDirectGemm`, a few µs each) take `directChunksPerThread`: more chunks cost
 * more than they balance there.
 */
export const threadTuning = {
  minMacs: 1 << 21,
  minMacsPerCopied: 24,
  chunksPerThread: 4,
  directChunksPerThread: 1,
};

/**
 * How many times an idle worker looks at the claim word for the next job before it sleeps (about a
 * millisecond), on machines with at least SPIN_MIN_CORES cores: there a decode step posts a small product
 * every few tens of µs (`decode-block-threads.ts`, whose `decodeThreadTuning.minCores` is the same 4), and
 * waking a sleeping thread costs about as much as such a product (measured: sleeping at once made 2
 * threads slower than 1). With fewer cores decoding stays on one thread, the products the pool gets are
 * large enough for a wake-up not to matter, and a spinning worker only takes the core V8's own threads
 * need (measured, 2 cores: sampling 3-15 % slower with the spin than without): it sleeps at once.
 */
const SPINS = 100_000;
const SPIN_MIN_CORES = 4;

/** Per-thread region of the shared memory: packed B (KC x 256 floats) then a register-tile spill. */
const SCRATCH_BYTES = 256 * 1024 + 1024;
const PAGE = 65536;
/** Shared memory cap (pages): products whose operands do not fit run on one thread. */
const MAX_PAGES = 16384; // 1 GiB

// Control block (Int32): the claim word ((job sequence << 16) | next chunk), chunks done, workers up,
// stop flag, then the job's parameters.
const CLAIM = 0;
const DONE = 1;
const UP = 2;
const STOP = 3;
const WORKER_CHUNKS = 4;
const PARAMS = 5;
const CONTROL_INTS = 32;

/**
 * Runs chunks of the current job until none is left, as source text so the workers and the caller
 * (through `new Function`) run the very same loop. Chunk `ci` of `chunks` covers whole batch items,
 * NR-wide column blocks or MR-high row blocks (dim 0, 1, 2) of C (+)= A B, with B packed by K blocks of
 * `kcMax` exactly as on one thread. A chunk is claimed by a compare-exchange on the claim word, which
 * also holds the job's sequence, so a late thread never runs a chunk of an old job.
 */
const WORK_BODY = `
  const seq = Atomics.load(p, ${CLAIM}) >>> 16;
  // Parameters read atomically, then the job tag that the caller clears before rewriting them (a seqlock):
  // a thread that read them while the next job was being written sees a different tag and claims nothing.
  const q = [];
  for (let i = 0; i < 24; i++) q.push(Atomics.load(p, ${PARAMS} + i));
  if (Atomics.load(p, ${PARAMS} + 24) !== seq) return Atomics.load(p, ${CLAIM});
  const [b1, m0, n0, k, A, aRs, aCs, aBs, B, bRs, bCs, bBs, C, cRs, cBs, acc0] = q;
  const [kcMax, ncMax, dim, units, unit, chunks, scratchBase, scratchBytes] = q.slice(16);
  const b0 = 0, scratch = scratchBase + slot * scratchBytes, tile = scratch + scratchBytes - 1024;
  for (;;) {
    const cur = Atomics.load(p, ${CLAIM});
    const ci = cur & 0xffff;
    if (cur >>> 16 !== seq || ci >= chunks) return cur;
    if (Atomics.compareExchange(p, ${CLAIM}, cur, cur + 1) !== cur) continue;
    const total = dim === 0 ? b1 : dim === 1 || dim === 3 ? n0 : m0;
    const lo = Math.min(total, Math.round((units * ci) / chunks) * unit);
    const hi = Math.min(total, Math.round((units * (ci + 1)) / chunks) * unit);
    if (dim === 3) {
      // B read in place (a decode step's few rows): columns [lo, hi) with the row tiles of one thread.
      const tiles = Math.ceil(m0 / 5), base = Math.floor(m0 / tiles), extra = m0 % tiles;
      const runs = extra > 0 ? [[base + 1, extra * (base + 1)], [base, (tiles - extra) * base]] : [[base, m0]];
      for (let pc = 0; pc < k && hi > lo; pc += kcMax) {
        const kc = Math.min(kcMax, k - pc);
        let row = 0;
        for (const [h, rows] of runs) {
          if (rows === 0) continue;
          w['gemm_s' + h](1, rows, hi - lo, kc, A + row * aRs + pc * aCs, aRs, aCs, 0, B + pc * bRs + 4 * lo, bRs, 0,
            C + row * cRs + 4 * lo, cRs, 0, pc > 0 ? 1 : acc0, tile);
          row += rows;
        }
      }
      if (slot > 0) Atomics.add(p, ${WORKER_CHUNKS}, 1);
      if (Atomics.add(p, ${DONE}, 1) + 1 === chunks) Atomics.notify(p, ${DONE});
      continue;
    }
    const bA = dim === 0 ? lo : b0, bZ = dim === 0 ? hi : b1;
    const j0 = dim === 1 ? lo : 0, j1 = dim === 1 ? hi : n0;
    const i0 = dim === 2 ? lo : 0, m = (dim === 2 ? hi : m0) - i0;
    for (let bi = bA; bi < bZ && m > 0; bi++) {
      const a = A + bi * aBs + i0 * aRs, b = B + bi * bBs, c = C + bi * cBs + i0 * cRs;
      for (let jc = j0; jc < j1; jc += ncMax) {
        const nc = Math.min(ncMax, j1 - jc);
        for (let pc = 0; pc < k; pc += kcMax) {
          const kc = Math.min(kcMax, k - pc);
          w.pack_b(kc, nc, b + pc * bRs + jc * bCs, bRs, bCs, scratch);
          w.gemm(m, nc, kc, a + pc * aCs, aRs, aCs, scratch, 32, 32 * kc, c + 4 * jc, cRs, pc > 0 ? 1 : acc0, tile);
        }
      }
    }
    if (slot > 0) Atomics.add(p, ${WORKER_CHUNKS}, 1);
    if (Atomics.add(p, ${DONE}, 1) + 1 === chunks) Atomics.notify(p, ${DONE});
  }`;

/** A worker's life: instantiate the kernels on the shared memory, then run jobs until told to stop. */
const WORKER_LOOP = `
const w = new WebAssembly.Instance(module, { env: { memory } }).exports;
const p = new Int32Array(control);
const work = () => {${WORK_BODY}
};
Atomics.add(p, ${UP}, 1);
// Watch the claim word as last seen: a new job (or a claim) changes it. Look \`spins\` times first (see
// SPINS), then sleep on it.
while (!Atomics.load(p, ${STOP})) {
  const seen = work();
  for (let i = 1; Atomics.load(p, ${CLAIM}) === seen; i++) {
    if (i > spins) {
      Atomics.wait(p, ${CLAIM}, seen);
      break;
    }
  }
}
`;

/** Node: the pool's data comes as `workerData`. */
const NODE_WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, slot, spins } = workerData;
${WORKER_LOOP}`;

/** Browser (a Blob URL): the pool's data comes as the first message (the module and memory are shareable). */
const WEB_WORKER_SOURCE = `
self.onmessage = ({ data }) => {
  self.onmessage = null;
  const { module, memory, control, slot, spins } = data;
${WORKER_LOOP}};
`;

interface ThreadExports {
  pack_b(...args: number[]): void;
  gemm(...args: number[]): void;
}
type Work = (w: ThreadExports, p: Int32Array, slot: number) => number;

interface WorkerLike {
  terminate(): unknown;
}

/** Where workers can run: how to spawn one with the pool's data, and the cores there are. */
interface Host {
  kind: 'worker_threads' | 'web-workers';
  cores: number;
  spawn(data: {
    module: WebAssembly.Module;
    memory: WebAssembly.Memory;
    control: SharedArrayBuffer;
    slot: number;
    spins: number;
  }): WorkerLike;
  /** Releases what spawning needed (the Blob URL). */
  release(): void;
}

interface Pool {
  memory: WebAssembly.Memory;
  control: Int32Array;
  exports: ThreadExports;
  work: Work;
  workers: WorkerLike[];
  host: Host;
  seq: number;
  /** Past the per-thread scratch: where `SharedKernels.alloc` starts, and how far it has allocated. */
  allocBase: number;
  allocEnd: number;
}

interface NodeProcess {
  env?: Record<string, string | undefined>;
  getBuiltinModule?: (id: string) => unknown;
}

function nodeProcess(): NodeProcess | undefined {
  return (globalThis as { process?: NodeProcess }).process;
}

type NodeWorkerCtor = new (
  src: string,
  opts: { eval: boolean; workerData: unknown },
) => WorkerLike & { unref(): void };

/**
 * Node's worker_threads (looked up at run time, so no bundle imports a Node built-in), or Web Workers where
 * the context is cross-origin isolated (SharedArrayBuffer, shared wasm memory) and may block: only a
 * dedicated worker, since a page's main thread may not `Atomics.wait` (nor should it: it would freeze the
 * page for the length of a product). Undefined elsewhere: one thread.
 */
function threadHost(): Host | undefined {
  if (typeof SharedArrayBuffer === 'undefined') return undefined;
  const proc = nodeProcess();
  if (proc?.getBuiltinModule) {
    const wt = proc.getBuiltinModule('node:worker_threads') as { Worker?: NodeWorkerCtor } | undefined;
    const os = proc.getBuiltinModule('node:os') as
      { availableParallelism?: () => number; cpus?: () => unknown[] } | undefined;
    const Worker = wt?.Worker;
    if (!Worker) return undefined;
    return {
      kind: 'worker_threads',
      cores: Math.max(1, os?.availableParallelism?.() ?? os?.cpus?.().length ?? 1),
      spawn(workerData) {
        const worker = new Worker(NODE_WORKER_SOURCE, { eval: true, workerData });
        worker.unref(); // an idle pool never keeps the process alive
        return worker;
      },
      release() {},
    };
  }
  const g = globalThis as {
    crossOriginIsolated?: boolean;
    DedicatedWorkerGlobalScope?: unknown;
    Worker?: new (url: string, opts: { name: string }) => WorkerLike & { postMessage(m: unknown): void };
    navigator?: { hardwareConcurrency?: number };
  };
  // DedicatedWorkerGlobalScope is exposed only inside a dedicated worker.
  const WebWorker = g.Worker;
  if (!g.crossOriginIsolated || typeof g.DedicatedWorkerGlobalScope !== 'function' || !WebWorker) {
    return undefined;
  }
  let url: string | undefined;
  return {
    kind: 'web-workers',
    cores: Math.max(1, g.navigator?.hardwareConcurrency ?? 1),
    spawn(data) {
      url ??= URL.createObjectURL(new Blob([WEB_WORKER_SOURCE], { type: 'text/javascript' }));
      const worker = new WebWorker(url, { name: `relign-gemm-${data.slot}` });
      worker.postMessage(data);
      return worker;
    },
    release() {
      if (url) URL.revokeObjectURL(url);
      url = undefined;
    },
  };
}

function parseThreads(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(
      `RELIGN_THREADS must be a whole number >= 1 (got '${value}'); unset it to use every core`,
    );
  }
  return n;
}

/** Counters for tests and benchmarks: products run on the pool, chunks the workers (not the caller) ran. */
export const threadStats = {
  products: 0,
  get workerChunks(): number {
    return pool ? Atomics.load(pool.control, WORKER_CHUNKS) : 0;
  },
};

let requested: number | undefined;
let cores: number | undefined;

/** Cores where workers can run (`os.availableParallelism()`, `navigator.hardwareConcurrency`), else 1. */
export function hostCores(): number {
  cores ??= threadHost()?.cores ?? 1;
  return cores;
}

let pool: Pool | null = null;
let poolFailed = false;

/**
 * The number of threads the wasm GEMM uses: `setWasmThreads`, else RELIGN_THREADS, else every core where
 * workers can run (1 elsewhere, e.g. a page's main thread). On a machine loaded by other processes, fewer
 * threads than cores can be faster: the caller waits for a worker the OS has preempted mid-chunk.
 */
export function getWasmThreads(): number {
  requested ??= parseThreads(nodeProcess()?.env?.['RELIGN_THREADS']) ?? threadHost()?.cores ?? 1;
  return requested;
}

/**
 * Sets how many threads relign's wasm GEMM uses (1: the single-threaded path, workers stopped). Results
 * do not depend on it. Workers start on the next large product and do not keep the process alive.
 */
export function setWasmThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`setWasmThreads: expected a whole number >= 1, got ${n}`);
  requested = n;
  if (pool && pool.workers.length !== n - 1) stopPool();
}

/** What the wasm GEMM runs on now (for benchmarks, logs and tests). */
export interface WasmThreadsInfo {
  /** Threads set (`getWasmThreads()`). */
  threads: number;
  /** Where the workers run: Node worker_threads, Web Workers, or none (one thread). */
  host: 'worker_threads' | 'web-workers' | 'none';
  /** Workers started and ready (the calling thread is not counted). */
  workersUp: number;
  /** Products computed on the pool so far, and chunks of them the workers (not the caller) computed. */
  products: number;
  workerChunks: number;
}

export function wasmThreadsInfo(): WasmThreadsInfo {
  return {
    threads: getWasmThreads(),
    host: pool?.host.kind ?? (getWasmThreads() > 1 ? (threadHost()?.kind ?? 'none') : 'none'),
    workersUp: pool ? Atomics.load(pool.control, UP) : 0,
    products: threadStats.products,
    workerChunks: threadStats.workerChunks,
  };
}

function stopPool(): void {
  const p = pool;
  pool = null;
  if (!p) return;
  Atomics.store(p.control, STOP, 1);
  Atomics.add(p.control, CLAIM, 1); // change the word the workers sleep on
  Atomics.notify(p.control, CLAIM);
  for (const w of p.workers) void w.terminate();
  p.host.release();
}

function startPool(threads: number): Pool | null {
  if (poolFailed) return null;
  try {
    const host = threadHost();
    if (!host) throw new Error('no workers here');
    const memory = new WebAssembly.Memory({
      initial: Math.ceil((threads * SCRATCH_BYTES) / PAGE) + 16,
      maximum: MAX_PAGES,
      shared: true,
    });
    const module = new WebAssembly.Module(kernelModuleBytes(true));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as ThreadExports;
    const control = new Int32Array(new SharedArrayBuffer(4 * CONTROL_INTS));
    // The workers' loop, from the same source text (one definition of the schedule). Made before any worker
    // starts: where eval is forbidden (a Content-Security-Policy), this throws and nothing is left running.
    const work = new Function('w', 'p', 'slot', WORK_BODY) as Work;
    const workers: WorkerLike[] = [];
    for (let slot = 1; slot < threads; slot++) {
      const spins = host.cores >= SPIN_MIN_CORES ? SPINS : 0;
      workers.push(host.spawn({ module, memory, control: control.buffer as SharedArrayBuffer, slot, spins }));
    }
    const allocBase = align(threads * SCRATCH_BYTES);
    return { memory, control, exports, work, workers, host, seq: 0, allocBase, allocEnd: allocBase };
  } catch {
    poolFailed = true;
    return null;
  }
}

/** A product as the packed GEMM schedule sees it (byte offsets and strides on the backend heap). */
export interface ParallelGemm {
  batch: number;
  m: number;
  n: number;
  k: number;
  a: { ptr: number; rs: number; cs: number; bs: number };
  b: { ptr: number; rs: number; cs: number; bs: number };
  c: number;
  accumulate: boolean;
  /** K-block depth and packed-block width of the single-threaded schedule. */
  kcMax: number;
  ncMax: number;
}

function span(batch: number, bs: number, rows: number, rs: number, cols: number, cs: number): number {
  return (batch - 1) * bs + (rows - 1) * rs + (cols - 1) * cs + 4;
}

const align = (x: number) => Math.ceil(x / 64) * 64;

/**
 * Runs the packed GEMM of `job` on the thread pool, reading and writing `heap` (the backend's bytes;
 * C contiguous: rows 4n bytes apart, products 4mn). Returns false (nothing done) where it should stay on
 * one thread: too small, one thread, no workers yet, or operands too large for the shared memory.
 */
export function parallelGemm(heap: () => Uint8Array, job: ParallelGemm): boolean {
  const threads = getWasmThreads();
  const { batch, m, n, k, a, b } = job;
  if (threads < 2 || batch * m * n * k < threadTuning.minMacs || k === 0) return false;
  if (!pool) pool = startPool(threads);
  const p = pool;
  if (!p || Atomics.load(p.control, UP) === 0) return false; // no worker up yet: one thread

  const aSpan = span(batch, a.bs, m, a.rs, k, a.cs);
  const bSpan = span(batch, b.bs, k, b.rs, n, b.cs);
  const cSpan = 4 * batch * m * n;
  const copied = (aSpan + bSpan + (job.accumulate ? 2 : 1) * cSpan) / 4;
  if (batch * m * n * k < threadTuning.minMacsPerCopied * copied) return false;
  const aOff = align(p.allocEnd);
  const bOff = align(aOff + aSpan);
  const cOff = align(bOff + bSpan);
  if (!ensureShared(p, cOff + cSpan)) return false;
  const shared = new Uint8Array(p.memory.buffer);
  const src = heap();
  shared.set(src.subarray(a.ptr, a.ptr + aSpan), aOff);
  shared.set(src.subarray(b.ptr, b.ptr + bSpan), bOff);
  if (job.accumulate) shared.set(src.subarray(job.c, job.c + cSpan), cOff);

  // Chunks of whole batch items, else NR-wide column blocks, else MR-high row blocks.
  const [dim, units, unit] =
    batch >= threads ? [0, batch, 1] : n >= m ? [1, Math.ceil(n / NR), NR] : [2, Math.ceil(m / MR), MR];
  const chunks = Math.min(units, threads * threadTuning.chunksPerThread);
  runJob(
    p,
    [batch, m, n, k, aOff, a.rs, a.cs, a.bs, bOff, b.rs, b.cs, b.bs, cOff, 4 * n, 4 * m * n],
    [job.accumulate ? 1 : 0, job.kcMax, job.ncMax, dim, units, unit, chunks],
  );
  heap().set(new Uint8Array(p.memory.buffer, cOff, cSpan), job.c);
  return true;
}

/**
 * Posts a job (the operands' 15 parameters, then accumulate, kcMax, ncMax, dim, units, unit, chunks),
 * computes chunks of it on this thread, and returns once every chunk is done. Waits by spinning first
 * (the workers finish a decode-sized product within microseconds of this thread), then sleeping.
 */
function runJob(p: Pool, operands: number[], schedule: number[]): void {
  const c = p.control;
  const chunks = schedule[6]!;
  p.seq = (p.seq % 0x7fff) + 1;
  Atomics.store(c, PARAMS + 24, 0); // the job tag: cleared while the parameters change (see WORK_BODY)
  c.set(operands, PARAMS);
  c.set([...schedule, 0, SCRATCH_BYTES], PARAMS + 15);
  Atomics.store(c, PARAMS + 24, p.seq);
  Atomics.store(c, DONE, 0);
  Atomics.store(c, CLAIM, p.seq << 16); // publishes the job (the parameters were written before)
  Atomics.notify(c, CLAIM);
  p.work(p.exports, c, 0);
  for (let i = 0, done = Atomics.load(c, DONE); done < chunks; done = Atomics.load(c, DONE)) {
    if (++i > 20_000) Atomics.wait(c, DONE, done);
  }
  threadStats.products++;
}

/** The thread pool's shared memory and this thread's instance of the kernels on it. */
export interface SharedKernels {
  memory: WebAssembly.Memory;
  k: KernelExports;
  /**
   * Bump-allocates `bytes` that stay put until {@link SharedKernels.reset} (resident operands, e.g. a
   * model's weights); -1 when the shared memory cannot grow that far.
   */
  alloc(bytes: number): number;
  /** Frees everything `alloc` gave out. */
  reset(): void;
  /** Offset of `bytes` of scratch past the allocated ones, valid until the next alloc or product. */
  scratch(bytes: number): number;
}

/**
 * The pool, when more than one thread is set and a worker is up (starting the pool on the first call, so
 * the first few calls may get null), for code that keeps its operands in the shared memory (the decode
 * block's products, `decode-block-threads.ts`). Null: compute on one thread.
 */
export function sharedKernels(): SharedKernels | null {
  if (getWasmThreads() < 2) return null;
  if (!pool) pool = startPool(getWasmThreads());
  const p = pool;
  if (!p || Atomics.load(p.control, UP) === 0) return null;
  return {
    memory: p.memory,
    k: p.exports as unknown as KernelExports,
    alloc(bytes) {
      const at = align(p.allocEnd);
      if (!ensureShared(p, at + bytes)) return -1;
      p.allocEnd = at + bytes;
      return at;
    },
    reset() {
      p.allocEnd = p.allocBase;
    },
    scratch(bytes) {
      const at = align(p.allocEnd);
      if (!ensureShared(p, at + bytes)) throw new Error('relign threads: the shared memory cannot grow');
      return at;
    },
  };
}

/** Grows the pool's memory to at least `bytes`; false where that passes the cap. */
function ensureShared(p: Pool, bytes: number): boolean {
  const have = p.memory.buffer.byteLength;
  if (bytes <= have) return true;
  const pages = Math.ceil((bytes - have) / PAGE);
  if (have / PAGE + pages > MAX_PAGES) return false;
  p.memory.grow(pages);
  return true;
}

/**
 * C (+)= A B on the pool with every operand in its shared memory (byte offsets): m rows of A (rows `aRs`
 * apart), B read in place (k rows `bRs` apart, n a multiple of 8), C rows `cRs` apart. Column panels are
 * split among the threads, each computed by the kernels and K blocks of the one-thread path (`gemm_s*`,
 * exact row tiles), so the bits are those of `gemm` on one thread.
 */
export function sharedDirectGemm(
  m: number,
  n: number,
  k: number,
  a: number,
  aRs: number,
  b: number,
  bRs: number,
  c: number,
  cRs: number,
  accumulate: boolean,
  kcMax: number,
): void {
  const p = pool;
  if (!p) throw new Error('sharedDirectGemm: the thread pool is not running');
  const units = n / NR;
  const chunks = Math.min(units, (p.workers.length + 1) * threadTuning.directChunksPerThread);
  runJob(
    p,
    [1, m, n, k, a, aRs, 4, 0, b, bRs, 4, 0, c, cRs, 0],
    [accumulate ? 1 : 0, kcMax, 0, 3, units, NR, chunks],
  );
}

/**
 * Starts the workers (if more than one thread is set and they can run) and resolves once all of them
 * are up, with the number of threads the next large product will use. Optional: without it, products
 * run on the workers that are already up.
 */
export async function wasmThreadsReady(timeoutMs = 10_000): Promise<number> {
  const threads = getWasmThreads();
  if (threads < 2) return 1;
  if (!pool) pool = startPool(threads);
  const p = pool;
  if (!p) return 1;
  const up = () => Atomics.load(p.control, UP);
  for (const end = Date.now() + timeoutMs; up() < p.workers.length && Date.now() < end;) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return 1 + up();
}

/** Stops the workers (tests; the pool restarts on demand). */
export function stopWasmThreads(): void {
  stopPool();
  poolFailed = false;
}
