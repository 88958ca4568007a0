// What every bench prints next to its numbers: the backend it measured, how many threads computed, and the
// host. A bench reports absolute times and rates from this run only; comparisons (with PyTorch, another
// backend, another machine) are made by running both in one session, never against figures written here.
import { availableParallelism, cpus, loadavg } from 'node:os';

/**
 * @param info what `initBackend()` of @relign/tensor returned.
 * @returns { backend, package, gpu, threads, relaxedSimd? (wasm), threadsNote?, adapter?, host } for the bench's JSON.
 */
export async function benchEnvironment(info) {
  const { threads, relaxedSimd, note } = await computeThreads(info.name);
  return {
    backend: info.name,
    package: info.package,
    gpu: info.gpu,
    threads,
    ...(relaxedSimd !== undefined ? { relaxedSimd } : {}),
    ...(note ? { threadsNote: note } : {}),
    ...(info.adapter ? { adapter: info.adapter } : {}),
    host: {
      cpu: cpus()[0]?.model ?? '',
      cores: availableParallelism(),
      loadavg1m: Number(loadavg()[0].toFixed(2)),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
  };
}

/** Threads the backend computes on, where it can tell. */
async function computeThreads(name) {
  if (name === 'cpu') return { threads: 1, note: "tfjs' pure-JS kernels run on the main thread" };
  if (name === 'wasm') {
    // relign's wasm GEMM runs on `getWasmThreads()` threads where @relign/tensor has them (RELIGN_THREADS),
    // else on one; tfjs' own wasm kernels report their pool.
    const tensor = await import('@relign/tensor');
    const relign = typeof tensor.getWasmThreads === 'function' ? tensor.getWasmThreads() : 1;
    const tfjs = (await import('@tensorflow/tfjs-backend-wasm')).getThreadsCount();
    // Whether the GEMM micro-kernels use relaxed SIMD (fused multiply-add) or plain mul + add.
    const relaxedSimd = typeof tensor.wasmRelaxedSimd === 'function' ? tensor.wasmRelaxedSimd() : false;
    return tfjs === relign
      ? { threads: relign, relaxedSimd }
      : {
          threads: relign,
          relaxedSimd,
          note: `relign's GEMM ${relign}, tfjs-backend-wasm's kernels ${tfjs}`,
        };
  }
  if (name === 'tensorflow')
    return { threads: null, note: "the TensorFlow C library's own pool (by default, one thread per core)" };
  return { threads: null, note: 'computes on the GPU' };
}
