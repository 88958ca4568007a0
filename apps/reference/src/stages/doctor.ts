/**
 * `relign doctor`: which tfjs backends are installed, which one is active (and why the better ones were
 * skipped), the WebGPU adapter (and whether it is a software one), a matmul and a training-step speed check
 * on each installed backend, and how to install a GPU backend.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  activeBackend,
  AdamW,
  findWebGPUAdapter,
  formatAdapter,
  initBackend,
  type BackendInfo,
  type BackendName,
  type GpuAdapterReport,
} from '@relign/tensor';
import { CausalLM, causalLmLoss, type BatchTensors } from '@relign/lm';
import { defaultBaseModelDir } from '../task/models.js';
import { moduleRequire } from '../module-require.js';

/** The backend packages relign can use, best first. */
export const BACKEND_PACKAGES: readonly {
  name: BackendName;
  packages: string[];
  gpu: boolean;
  note: string;
}[] = [
  {
    name: 'tensorflow',
    packages: ['@tensorflow/tfjs-node-gpu'],
    gpu: true,
    note: 'native libtensorflow with CUDA',
  },
  { name: 'tensorflow', packages: ['@tensorflow/tfjs-node'], gpu: false, note: 'native libtensorflow, CPU' },
  {
    name: 'webgpu',
    packages: ['@tensorflow/tfjs-backend-webgpu', 'webgpu'],
    gpu: true,
    note: 'WebGPU (Dawn: Vulkan, Metal or D3D12)',
  },
  {
    name: 'wasm',
    packages: ['@tensorflow/tfjs-backend-wasm'],
    gpu: false,
    note: 'WebAssembly + XNNPACK (relign registers faster kernels)',
  },
  { name: 'cpu', packages: ['@tensorflow/tfjs-backend-cpu'], gpu: false, note: 'plain JavaScript, slowest' },
];

/** How to get a GPU backend (printed by `doctor`, and in the README). */
export const GPU_INSTALL_HELP = [
  'GPU backends (optional; relign runs everywhere on wasm/cpu):',
  '  CUDA (Linux x64, NVIDIA): npm install @tensorflow/tfjs-node-gpu@4.22.0',
  '      needs CUDA 11.2 and cuDNN 8.1 at run time (the install downloads libtensorflow 2.9.1;',
  '      set TFJS_NODE_BASE_URI to use a mirror); then RELIGN_BACKEND=tensorflow or --backend tensorflow',
  '  WebGPU: npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0',
  '      in Node, Dawn needs a Vulkan (Linux), Metal (macOS) or D3D12 (Windows) driver; then --backend webgpu',
  '      a software adapter (SwiftShader, lavapipe, WARP) is slower than wasm: used only when asked for by name',
  '  native CPU: npm install @tensorflow/tfjs-node@4.22.0 (faster than wasm on many-core machines)',
].join('\n');

/** Whether a package can be resolved from the app. */
export function isInstalled(pkg: string): boolean {
  const require = moduleRequire();
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Times `reps` products of two `n`×`n` float32 matrices on the active backend (after one warm-up).
 * @returns GFLOP/s (2n³ flops per product) and milliseconds per product.
 */
export async function matmulSpeed(
  n = 512,
  reps = 8,
  budgetMs = Infinity,
): Promise<{ gflops: number; ms: number }> {
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 1);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 2);
  try {
    const once = async () => {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    };
    await once();
    const t0 = performance.now();
    let done = 0;
    // At least one timed product; stop early past the budget (a software GPU takes seconds per product).
    while (done < reps && (done === 0 || performance.now() - t0 < budgetMs)) {
      await once();
      done++;
    }
    const ms = (performance.now() - t0) / done;
    return { gflops: (2 * n ** 3) / (ms * 1e6), ms };
  } finally {
    a.dispose();
    b.dispose();
  }
}

/** The model of the training-step check: a small GPT-2 (attention, MLP, layer norms, tied embedding). */
export const STEP_MODEL = { vocab_size: 256, n_positions: 32, n_embd: 64, n_layer: 2, n_head: 4 } as const;
/** Rows × tokens of the training-step check. */
export const STEP_BATCH = { rows: 8, tokens: 32 } as const;

/**
 * Times one training step of {@link STEP_MODEL} on the active backend as relign's loops take it: the
 * causal-LM loss, its gradients and a guarded AdamW update, after one warm-up step (which on a GPU
 * compiles the shaders). Steps repeat until `budgetMs` has passed (at least one, at most `maxSteps`).
 * @returns milliseconds per step.
 */
export async function trainStepTime(budgetMs = 2000, maxSteps = 5): Promise<number> {
  const model = CausalLM.create(STEP_MODEL, 1);
  const { rows, tokens } = STEP_BATCH;
  const ids = Array.from({ length: rows * tokens }, (_, i) => (i * 7919 + 13) % STEP_MODEL.vocab_size);
  const batch: BatchTensors = {
    inputIds: tf.tensor2d(ids, [rows, tokens], 'int32'),
    attentionMask: tf.ones([rows, tokens], 'int32'),
    targetMask: tf.ones([rows, tokens - 1], 'float32'),
  };
  const optimizer = new AdamW({ lr: 1e-4 });
  const trainable = model.trainableVariables();
  const step = async () => {
    const { value, grads } = tf.variableGrads(() => causalLmLoss(model, batch), [...trainable.values()]);
    try {
      const byName: Record<string, tf.Tensor> = {};
      for (const [name, v] of trainable) if (grads[v.name]) byName[name] = grads[v.name]!;
      await optimizer.guardedStep(byName, trainable, { loss: (await value.data())[0]! });
    } finally {
      value.dispose();
      tf.dispose(grads);
    }
  };
  try {
    await step();
    const t0 = performance.now();
    let done = 0;
    while (done < maxSteps && (done === 0 || performance.now() - t0 < budgetMs)) {
      await step();
      done++;
    }
    return (performance.now() - t0) / done;
  } finally {
    optimizer.dispose();
    model.dispose();
    tf.dispose([batch.inputIds, batch.attentionMask, batch.targetMask]);
  }
}

/** The speed checks of one installed backend (or why it could not be measured). */
export interface BackendSpeed {
  name: BackendName;
  package?: string;
  /** `n`×`n` float32 matmul. */
  matmul?: { gflops: number; ms: number; n: number };
  /** One {@link trainStepTime} step, milliseconds. */
  stepMs?: number;
  /** webgpu: the adapter measured. */
  adapter?: GpuAdapterReport;
  /** Why it could not be started or measured. */
  error?: string;
}

export interface DoctorReport {
  node: string;
  platform: string;
  cpus: number;
  backends: { name: BackendName; packages: string[]; installed: boolean; gpu: boolean; note: string }[];
  active: BackendInfo | undefined;
  /** The active backend's matmul check (also in `measured`). */
  speed?: { gflops: number; ms: number; n: number };
  /** Speed checks of every installed backend, best first (absent with `speed: false`). */
  measured?: BackendSpeed[];
  /**
   * The WebGPU adapter when the WebGPU packages are installed: null when WebGPU offers none, a string when
   * looking for one failed.
   */
  webgpuAdapter?: GpuAdapterReport | null | string;
  baseModel: { dir: string; present: boolean };
}

/** Starts `name` by name and runs the speed checks on it. */
async function measureBackend(name: BackendName, n: number): Promise<BackendSpeed> {
  try {
    const info = await initBackend(name);
    const slow = name === 'cpu' || info.adapter?.software === true;
    const matmul = { ...(await matmulSpeed(n, slow ? 2 : 8, 1000)), n };
    const stepMs = await trainStepTime(slow ? 500 : 2000);
    return {
      name,
      package: info.package,
      matmul,
      stepMs,
      ...(info.adapter ? { adapter: info.adapter } : {}),
    };
  } catch (err) {
    return { name, error: (err as Error)?.message ?? String(err) };
  }
}

/** Gathers the doctor's report (initialises the backend when none is active). */
export async function doctor(
  options: { backend?: BackendName | 'auto'; speed?: boolean } = {},
): Promise<DoctorReport> {
  const backends = BACKEND_PACKAGES.map((b) => ({ ...b, installed: b.packages.every(isInstalled) }));
  let active = activeBackend();
  if (!active || options.backend !== undefined) {
    active = await initBackend(options.backend === 'auto' ? undefined : options.backend);
  }
  const report: DoctorReport = {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: availableParallelism(),
    backends,
    active,
    baseModel: {
      dir: defaultBaseModelDir(),
      present: existsSync(join(defaultBaseModelDir(), 'model.safetensors')),
    },
  };
  if (backends.some((b) => b.name === 'webgpu' && b.installed)) {
    try {
      report.webgpuAdapter = (await findWebGPUAdapter()) ?? null;
    } catch (err) {
      report.webgpuAdapter = (err as Error)?.message ?? String(err);
    }
  }
  if (options.speed !== false) {
    const names = [...new Set(backends.filter((b) => b.installed).map((b) => b.name))];
    const measured: BackendSpeed[] = [];
    for (const name of names) measured.push(await measureBackend(name, 512));
    // Measuring switched backends: leave the chosen one active.
    await initBackend(active.name);
    report.measured = measured;
    const own = measured.find((m) => m.name === active.name)?.matmul;
    if (own) report.speed = own;
  }
  return report;
}

/** The report as text lines. */
export function formatDoctor(r: DoctorReport): string {
  const lines = [`node ${r.node} on ${r.platform}, ${r.cpus} CPU cores`, 'tfjs backends (best first):'];
  for (const b of r.backends) {
    const isActive = r.active?.package === b.packages[0];
    lines.push(
      `  ${isActive ? '*' : b.installed ? '+' : '-'} ${b.name.padEnd(10)} ${b.packages.join(' + ').padEnd(48)} ` +
        `${b.installed ? 'installed' : 'not installed'}${b.gpu ? ', GPU' : ''} — ${b.note}`,
    );
  }
  if (r.active) {
    lines.push(
      `active: ${r.active.name} (${r.active.package}; chosen ${r.active.reason === 'auto' ? 'automatically' : r.active.reason === 'env' ? 'by RELIGN_BACKEND' : 'by --backend'})`,
    );
    for (const s of r.active.skipped) lines.push(`  skipped ${s.package}: ${s.why}`);
  }
  if (r.webgpuAdapter !== undefined) {
    const a = r.webgpuAdapter;
    lines.push(
      a === null
        ? 'webgpu adapter: none (Dawn found no driver: Vulkan on Linux, Metal on macOS, D3D12 on Windows)'
        : typeof a === 'string'
          ? `webgpu adapter: could not look for one: ${a}`
          : `webgpu adapter: ${formatAdapter(a)}` +
            (a.software
              ? ` — a CPU emulating a GPU: ${a.softwareBecause}; automatic selection prefers wasm, --backend webgpu uses it`
              : ''),
    );
  }
  if (r.measured) {
    const m = STEP_MODEL;
    lines.push(
      `speed checks: 512x512 float32 matmul; training step of a GPT-2 (${m.n_layer} layers, width ${m.n_embd}, ` +
        `vocabulary ${m.vocab_size}) on ${STEP_BATCH.rows}x${STEP_BATCH.tokens} tokens with AdamW:`,
    );
    for (const s of r.measured) {
      lines.push(
        `  ${s.name.padEnd(10)} ` +
          (s.error !== undefined
            ? `not measured: ${s.error.split('\n')[0]}`
            : `matmul ${s.matmul!.ms.toFixed(1)} ms = ${s.matmul!.gflops.toFixed(1)} GFLOP/s, ` +
              `training step ${s.stepMs!.toFixed(0)} ms` +
              (s.adapter ? ` (${formatAdapter(s.adapter)})` : '')),
      );
    }
  }
  lines.push(`base model: ${r.baseModel.present ? 'present' : 'MISSING'} (${r.baseModel.dir})`);
  lines.push(
    'select a backend with --backend <name> or RELIGN_BACKEND=<name> (tensorflow, webgpu, wasm, cpu)',
  );
  lines.push(GPU_INSTALL_HELP);
  return lines.join('\n');
}
