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
import { kernelModuleBytes, MR, NR } from './kernel-module.js';

/**
 * Products below `minMacs` multiply-adds stay on one thread (waking workers costs ~10-50 µs), and so do
 * products with fewer than `minMacsPerCopied` multiply-adds per float copied in and out (a small K: the
 * copies would eat the gain; measured on attention-shaped 64 x [64x32 @ 32x64], 16 per float: slower); each
 * product is cut into `chunksPerThread` chunks per thread, so that a thread the OS does not schedule in
 * time (a loaded machine) leaves its chunks to the others.
 */
export const threadTuning = { minMacs: 1 << 21, minMacsPerCopied: 24, chunksPerThread: 4 };

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
    const total = dim === 0 ? b1 : dim === 1 ? n0 : m0;
    const lo = Math.min(total, Math.round((units * ci) / chunks) * unit);
    const hi = Math.min(total, Math.round((units * (ci + 1)) / chunks) * unit);
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
// Sleep on the claim word as last seen: a new job (or a claim) changes it and wakes this thread.
while (!Atomics.load(p, ${STOP})) Atomics.wait(p, ${CLAIM}, work());
`;

/** Node: the pool's data comes as `workerData`. */
const NODE_WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, slot } = workerData;
${WORKER_LOOP}`;

/** Browser (a Blob URL): the pool's data comes as the first message (the module and memory are shareable). */
const WEB_WORKER_SOURCE = `
self.onmessage = ({ data }) => {
  self.onmessage = null;
  const { module, memory, control, slot } = data;
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
      workers.push(host.spawn({ module, memory, control: control.buffer as SharedArrayBuffer, slot }));
    }
    return { memory, control, exports, work, workers, host, seq: 0 };
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
  const aOff = align(threads * SCRATCH_BYTES);
  const bOff = align(aOff + aSpan);
  const cOff = align(bOff + bSpan);
  const need = cOff + cSpan;
  const have = p.memory.buffer.byteLength;
  if (need > have) {
    const pages = Math.ceil((need - have) / PAGE);
    if (have / PAGE + pages > MAX_PAGES) return false;
    p.memory.grow(pages);
  }
  const shared = new Uint8Array(p.memory.buffer);
  const src = heap();
  shared.set(src.subarray(a.ptr, a.ptr + aSpan), aOff);
  shared.set(src.subarray(b.ptr, b.ptr + bSpan), bOff);
  if (job.accumulate) shared.set(src.subarray(job.c, job.c + cSpan), cOff);

  // Chunks of whole batch items, else NR-wide column blocks, else MR-high row blocks.
  const [dim, units, unit] =
    batch >= threads ? [0, batch, 1] : n >= m ? [1, Math.ceil(n / NR), NR] : [2, Math.ceil(m / MR), MR];
  const chunks = Math.min(units, threads * threadTuning.chunksPerThread);
  const c = p.control;
  p.seq = (p.seq % 0x7fff) + 1;
  Atomics.store(c, PARAMS + 24, 0); // the job tag: cleared while the parameters change (see WORK_BODY)
  c.set([batch, m, n, k, aOff, a.rs, a.cs, a.bs, bOff, b.rs, b.cs, b.bs, cOff, 4 * n, 4 * m * n], PARAMS);
  c.set(
    [job.accumulate ? 1 : 0, job.kcMax, job.ncMax, dim, units, unit, chunks, 0, SCRATCH_BYTES],
    PARAMS + 15,
  );
  Atomics.store(c, PARAMS + 24, p.seq);
  Atomics.store(c, DONE, 0);
  Atomics.store(c, CLAIM, p.seq << 16); // publishes the job (the parameters were written before)
  Atomics.notify(c, CLAIM);
  p.work(p.exports, c, 0);
  for (let done = Atomics.load(c, DONE); done < chunks; done = Atomics.load(c, DONE)) {
    Atomics.wait(c, DONE, done);
  }
  heap().set(new Uint8Array(p.memory.buffer, cOff, cSpan), job.c);
  threadStats.products++;
  return true;
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
