/**
 * `relign doctor`: which tfjs backends are installed, which one is active (and why the better ones were
 * skipped), a quick matmul speed check on it, and how to install a GPU backend.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend, initBackend, type BackendInfo, type BackendName } from '@relign/tensor';
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
export async function matmulSpeed(n = 512, reps = 8): Promise<{ gflops: number; ms: number }> {
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
    for (let i = 0; i < reps; i++) await once();
    const ms = (performance.now() - t0) / reps;
    return { gflops: (2 * n ** 3) / (ms * 1e6), ms };
  } finally {
    a.dispose();
    b.dispose();
  }
}

export interface DoctorReport {
  node: string;
  platform: string;
  cpus: number;
  backends: { name: BackendName; packages: string[]; installed: boolean; gpu: boolean; note: string }[];
  active: BackendInfo | undefined;
  speed?: { gflops: number; ms: number; n: number };
  baseModel: { dir: string; present: boolean };
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
  if (options.speed !== false) {
    const n = 512;
    report.speed = { ...(await matmulSpeed(n, active.name === 'cpu' ? 2 : 8)), n };
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
  if (r.speed) {
    lines.push(
      `speed check: ${r.speed.n}x${r.speed.n} float32 matmul ${r.speed.ms.toFixed(1)} ms = ${r.speed.gflops.toFixed(1)} GFLOP/s`,
    );
  }
  lines.push(`base model: ${r.baseModel.present ? 'present' : 'MISSING'} (${r.baseModel.dir})`);
  lines.push(
    'select a backend with --backend <name> or RELIGN_BACKEND=<name> (tensorflow, webgpu, wasm, cpu)',
  );
  lines.push(GPU_INSTALL_HELP);
  return lines.join('\n');
}
