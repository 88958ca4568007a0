/**
 * Backend selection.
 *
 * Order of preference: `tensorflow` (native libtensorflow through `@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`), `webgpu` (`@tensorflow/tfjs-backend-webgpu`, with the `webgpu` package's Dawn
 * in Node or the browser's `navigator.gpu`), `wasm`, `cpu`. The native and WebGPU packages are optional
 * peer dependencies: they are loaded with dynamic `import()` only when present, so relign installs and
 * runs everywhere on wasm/cpu alone. Automatic selection passes a software WebGPU adapter (SwiftShader,
 * lavapipe, WARP, …) by for wasm; naming webgpu uses it (CI tests the GPU path on SwiftShader).
 */
import * as tf from '@tensorflow/tfjs-core';
import './gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { registerWasmKernels } from './wasm/index.js';
import {
  ensureNavigatorGpu,
  explainSyncReads,
  formatAdapter,
  NO_ADAPTER_HELP,
  probeAdapter,
  type GpuAdapterReport,
} from './webgpu.js';

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/** Best first. */
export const BACKEND_PREFERENCE: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

export interface BackendInfo {
  /** The tfjs backend name now active. */
  name: BackendName;
  /** The npm package that provides it (for `tensorflow`: which of tfjs-node-gpu / tfjs-node). */
  package: string;
  /** Whether it computes on a GPU. */
  gpu: boolean;
  /** Why it was chosen: forced by argument, by `RELIGN_BACKEND`, or picked automatically. */
  reason: 'argument' | 'env' | 'auto';
  /** Backends tried before it and why each was skipped (automatic selection only). */
  skipped: { name: BackendName; package: string; why: string }[];
  /** `webgpu` only: the adapter it runs on, and whether that is a software one (e.g. SwiftShader). */
  adapter?: GpuAdapterReport;
}

/** Loads a module by specifier. Injectable so selection logic can be tested without the packages. */
export type ModuleLoader = (specifier: string) => Promise<unknown>;

export interface InitBackendOptions {
  /** Replaces dynamic `import()` (tests). */
  loadModule?: ModuleLoader;
  /** Environment to read `RELIGN_BACKEND` from. Default `process.env` (empty in a browser). */
  env?: Record<string, string | undefined>;
}

const TFJS_VERSION = '4.22.0';

interface Candidate {
  name: BackendName;
  package: string;
  gpu: boolean;
  install: string;
  /**
   * Loads the package(s) so that the tfjs backend `name` is registered; may add details to the report.
   * `auto`: chosen automatically rather than asked for by name. Throws {@link Skip} to pass it by.
   */
  load(loadModule: ModuleLoader, context: { auto: boolean }): Promise<Pick<BackendInfo, 'adapter'> | void>;
}

/** A candidate that is present but should not be used; its message is the reason shown. */
class Skip extends Error {}

const CANDIDATES: readonly Candidate[] = [
  {
    name: 'tensorflow',
    package: '@tensorflow/tfjs-node-gpu',
    gpu: true,
    install: `npm install @tensorflow/tfjs-node-gpu@${TFJS_VERSION} (needs CUDA 11.2 and cuDNN 8.1 at run time)`,
    async load(loadModule) {
      await loadModule('@tensorflow/tfjs-node-gpu');
    },
  },
  {
    name: 'tensorflow',
    package: '@tensorflow/tfjs-node',
    gpu: false,
    install: `npm install @tensorflow/tfjs-node@${TFJS_VERSION} (native libtensorflow, CPU)`,
    async load(loadModule) {
      await loadModule('@tensorflow/tfjs-node');
    },
  },
  {
    name: 'webgpu',
    package: '@tensorflow/tfjs-backend-webgpu',
    gpu: true,
    install:
      `npm install @tensorflow/tfjs-backend-webgpu@${TFJS_VERSION} webgpu ` +
      '(in Node, Dawn needs a Vulkan, Metal or D3D12 driver; browsers need no extra package)',
    async load(loadModule, { auto }) {
      const gpu = await ensureNavigatorGpu(loadModule);
      // tfjs-backend-webgpu fails with "Cannot read properties of null" without an adapter, and says
      // nothing about which one it got: ask WebGPU first.
      const adapter = await probeAdapter(gpu);
      if (!adapter) throw new Skip(`no WebGPU adapter: ${NO_ADAPTER_HELP}`);
      if (adapter.software && auto) {
        // A CPU emulating a GPU is far slower than wasm on the same CPU (SwiftShader on 2 cores: a GPT-2
        // training step ~50x slower, `relign doctor`), so automatic selection passes it by.
        throw new Skip(
          `${formatAdapter(adapter)} adapter: slower than wasm; ask for webgpu by name ` +
            "(RELIGN_BACKEND=webgpu or initBackend('webgpu')) to use it anyway",
        );
      }
      await loadModule('@tensorflow/tfjs-backend-webgpu');
      return { adapter };
    },
  },
  {
    name: 'wasm',
    package: '@tensorflow/tfjs-backend-wasm',
    gpu: false,
    install: `npm install @tensorflow/tfjs-backend-wasm@${TFJS_VERSION}`,
    async load(loadModule) {
      await loadModule('@tensorflow/tfjs-backend-wasm');
    },
  },
  {
    name: 'cpu',
    package: '@tensorflow/tfjs-backend-cpu',
    gpu: false,
    install: `npm install @tensorflow/tfjs-backend-cpu@${TFJS_VERSION}`,
    async load() {
      // Imported statically above: always available.
    },
  },
];

let active: BackendInfo | undefined;

const defaultLoader: ModuleLoader = (specifier) => import(/* @vite-ignore */ specifier);

function isBackendName(value: string): value is BackendName {
  return (BACKEND_PREFERENCE as readonly string[]).includes(value);
}

function isModuleNotFound(err: unknown, specifier: string): boolean {
  const e = err as { code?: string; message?: string };
  const code = e?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    // Only "this package is absent", not "a dependency of this package is absent".
    return typeof e.message !== 'string' || e.message.includes(specifier);
  }
  return false;
}

/**
 * Selects and initializes a tfjs backend, and returns what was chosen.
 *
 * - No argument: `RELIGN_BACKEND` if set, else the best available in {@link BACKEND_PREFERENCE} order.
 * - A name (or `RELIGN_BACKEND=<name>`): that backend or an error that says what to install.
 * - A list: the first of those that initializes.
 * - `'auto'`: ignore `RELIGN_BACKEND` and pick the best available.
 */
export async function initBackend(
  preference?: BackendName | readonly BackendName[] | 'auto',
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  const loadModule = options.loadModule ?? defaultLoader;
  const env = options.env ?? (typeof process !== 'undefined' ? process.env : {});

  let reason: BackendInfo['reason'] = 'auto';
  let wanted: readonly BackendName[];
  let forced = false;
  if (preference === undefined && env.RELIGN_BACKEND) {
    const name = env.RELIGN_BACKEND.trim();
    if (!isBackendName(name)) {
      throw new Error(
        `RELIGN_BACKEND=${name} is not a backend. Use one of: ${BACKEND_PREFERENCE.join(', ')} ` +
          '(or unset it to pick the best available).',
      );
    }
    wanted = [name];
    forced = true;
    reason = 'env';
  } else if (preference === undefined || preference === 'auto') {
    wanted = BACKEND_PREFERENCE;
  } else if (typeof preference === 'string') {
    if (!isBackendName(preference)) {
      throw new Error(
        `initBackend('${preference}'): unknown backend. Use one of: ${BACKEND_PREFERENCE.join(', ')}.`,
      );
    }
    wanted = [preference];
    forced = true;
    reason = 'argument';
  } else {
    const unknown = preference.filter((p) => !isBackendName(p));
    if (unknown.length > 0 || preference.length === 0) {
      throw new Error(
        `initBackend([${preference.join(', ')}]): ` +
          (unknown.length ? `unknown backend ${unknown.join(', ')}` : 'empty list') +
          `. Use names from: ${BACKEND_PREFERENCE.join(', ')}.`,
      );
    }
    wanted = preference;
    reason = 'argument';
  }

  const skipped: BackendInfo['skipped'] = [];
  for (const name of wanted) {
    for (const candidate of CANDIDATES.filter((c) => c.name === name)) {
      const result = await tryActivate(candidate, loadModule, reason === 'auto');
      if (typeof result !== 'string') {
        active = { name, package: candidate.package, gpu: candidate.gpu, reason, skipped, ...result };
        return active;
      }
      skipped.push({ name, package: candidate.package, why: result });
    }
  }

  const origin =
    reason === 'env' ? `RELIGN_BACKEND=${wanted[0]}` : `initBackend(${JSON.stringify(preference)})`;
  const hints = CANDIDATES.filter((c) => wanted.includes(c.name))
    .map((c) => `  - ${c.install}`)
    .join('\n');
  const tried = skipped.map((s) => `  - ${s.package}: ${s.why}`).join('\n');
  throw new Error(
    `${origin}: no requested backend could be started${forced ? '' : ' from the list'}.\nTried:\n${tried}\n` +
      `To install:\n${hints}`,
  );
}

/** Loads and activates one candidate; returns why it failed, or its details on success. */
async function tryActivate(
  candidate: Candidate,
  loadModule: ModuleLoader,
  auto: boolean,
): Promise<string | Pick<BackendInfo, 'adapter'>> {
  let details: Pick<BackendInfo, 'adapter'> = {};
  try {
    details = (await candidate.load(loadModule, { auto })) ?? {};
  } catch (err) {
    if (err instanceof Skip) return err.message;
    const spec = candidate.name === 'webgpu' ? 'webgpu' : candidate.package;
    if (isModuleNotFound(err, candidate.package) || isModuleNotFound(err, spec)) {
      return `not installed (${candidate.install})`;
    }
    return `failed to load: ${(err as Error)?.message ?? String(err)}`;
  }
  if (tf.findBackendFactory(candidate.name) === null && tf.findBackend(candidate.name) === null) {
    return `the package loaded but registered no '${candidate.name}' backend`;
  }
  let ok = false;
  try {
    ok = await tf.setBackend(candidate.name);
    await tf.ready();
  } catch (err) {
    return `failed to initialize: ${(err as Error)?.message ?? String(err)}`;
  }
  if (!ok) return 'failed to initialize (tf.setBackend returned false)';
  if (candidate.name === 'wasm') registerWasmKernels();
  if (candidate.name === 'webgpu') explainSyncReads(tf.findBackend('webgpu'));
  return details;
}

/** The backend chosen by the last successful {@link initBackend}, or undefined before any. */
export function activeBackend(): BackendInfo | undefined {
  if (active && tf.getBackend() !== active.name) {
    // Someone switched with tf.setBackend directly; report what is really active.
    const name = tf.getBackend();
    if (!isBackendName(name)) return undefined;
    const candidate = CANDIDATES.find((c) => c.name === name)!;
    return { name, package: candidate.package, gpu: candidate.gpu, reason: 'argument', skipped: [] };
  }
  return active;
}
