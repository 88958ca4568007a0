/**
 * WebGPU specifics of backend selection: Dawn for Node (the `webgpu` package), which adapter WebGPU gives,
 * whether it is a software rasterizer, and a clear error for synchronous reads in Node.
 */

/** The WebGPU adapter a `webgpu` backend runs on, as {@link initBackend} reports it. */
export interface GpuAdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU emulating a GPU (SwiftShader, lavapipe, llvmpipe, WARP, a fallback or CPU-type adapter). */
  software: boolean;
  /** What marked it as software, e.g. `SwiftShader (architecture "swiftshader")`. */
  softwareBecause?: string;
}

/** What a `GPUAdapterInfo` offers; Dawn and browsers differ in the optional fields. */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** Standard since 2024 (formerly `GPUAdapter.isFallbackAdapter`). */
  isFallbackAdapter?: boolean;
  /** Non-standard (Dawn's `wgpu::AdapterType`), e.g. "CPU", "discrete GPU". */
  adapterType?: string;
}

/** Software rasterizers by the names their drivers report (Vulkan, GL and D3D). */
const SOFTWARE_NAMES: readonly [RegExp, string][] = [
  [/swiftshader/i, 'SwiftShader'],
  [/lavapipe/i, 'lavapipe'],
  [/llvmpipe/i, 'llvmpipe'],
  [/softpipe/i, 'softpipe'],
  [/\bwarp\b|microsoft basic render/i, 'WARP'],
];

/** Reads an adapter's info into a report and decides whether it is a software adapter. */
export function describeAdapter(info: AdapterInfoLike, isFallbackAdapter = false): GpuAdapterReport {
  const field = (v: unknown) => (typeof v === 'string' ? v : '');
  const report: GpuAdapterReport = {
    vendor: field(info.vendor),
    architecture: field(info.architecture),
    device: field(info.device),
    description: field(info.description),
    software: false,
  };
  const because = softwareReason(info, isFallbackAdapter);
  if (because !== undefined) {
    report.software = true;
    report.softwareBecause = because;
  }
  return report;
}

function softwareReason(info: AdapterInfoLike, isFallbackAdapter: boolean): string | undefined {
  for (const key of ['vendor', 'architecture', 'device', 'description'] as const) {
    const value = info[key];
    if (typeof value !== 'string') continue;
    const hit = SOFTWARE_NAMES.find(([re]) => re.test(value));
    if (hit) return `${hit[1]} (${key} "${value}")`;
  }
  if (typeof info.adapterType === 'string' && /^cpu$/i.test(info.adapterType.trim())) {
    return `adapter type "${info.adapterType}"`;
  }
  if (info.isFallbackAdapter === true || isFallbackAdapter) return 'a fallback adapter';
  return undefined;
}

/** One line for logs: `google swiftshader (SwiftShader driver 5.0.0), software`. */
export function formatAdapter(a: GpuAdapterReport): string {
  const name = [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  const detail = a.description || a.device;
  return `${name}${detail ? ` (${detail})` : ''}${a.software ? ', software' : ''}`;
}

/** How to give Dawn a driver on Linux; printed when no adapter is found. */
export const NO_ADAPTER_HELP =
  'on Linux Dawn needs a Vulkan driver (libvulkan.so.1 and an ICD, e.g. NVIDIA/AMD/Intel); for a software ' +
  "adapter with Debian's chromium package set LD_LIBRARY_PATH=/usr/lib/chromium " +
  'VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json';

interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<AdapterLike | null>;
}
interface AdapterLike {
  info?: AdapterInfoLike;
  isFallbackAdapter?: boolean;
  requestAdapterInfo?: () => Promise<AdapterInfoLike>;
}

/**
 * Makes `navigator.gpu` available. In a browser it already is; in Node the `webgpu` package (Dawn)
 * documents `create(flags)` for the GPU object and `globals` for the WebGPU constants (GPUBufferUsage, …)
 * that tfjs-backend-webgpu reads from globalThis.
 */
export async function ensureNavigatorGpu(
  loadModule: (specifier: string) => Promise<unknown>,
): Promise<GpuLike> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    const dawn = (await loadModule('webgpu')) as {
      create?: (flags: string[]) => unknown;
      globals?: Record<string, unknown>;
      default?: { create?: (flags: string[]) => unknown; globals?: Record<string, unknown> };
    };
    const api = dawn.create ? dawn : (dawn.default ?? {});
    if (typeof api.create !== 'function') throw new Error("the 'webgpu' package exports no create()");
    Object.assign(globalThis, api.globals ?? {});
    const gpu = api.create([]);
    if (g.navigator) {
      Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    } else {
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    }
  }
  return g.navigator!.gpu as GpuLike;
}

/**
 * The adapter tfjs-backend-webgpu will get (it asks for `high-performance` by default), or undefined when
 * WebGPU has none (no driver).
 */
export async function probeAdapter(gpu: GpuLike): Promise<GpuAdapterReport | undefined> {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return undefined;
  const info = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
  return describeAdapter(info, adapter.isFallbackAdapter === true);
}

/**
 * tfjs-backend-webgpu 4.22 reads GPU data synchronously (`dataSync`, `arraySync`, `bufferSync`, and kernels
 * such as a rank-5 `tile`) by drawing through an `OffscreenCanvas`. Node has none, so such a read fails with
 * "OffscreenCanvas is not defined" after a warning about performance; no tfjs flag avoids it, because WebGPU
 * buffers can only be mapped asynchronously. This turns that failure into an error that names the fix.
 */
export function explainSyncReads(backend: unknown): void {
  if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined') return;
  const b = backend as { readSync?: (dataId: unknown) => unknown; hasReadSyncWarned?: boolean } | null;
  if (!b || typeof b.readSync !== 'function' || (b.readSync as { relign?: boolean }).relign) return;
  const original = b.readSync.bind(b);
  // The warning says the read is slow; in Node it is impossible, and the error below says so.
  b.hasReadSyncWarned = true;
  const readSync = (dataId: unknown) => {
    try {
      return original(dataId);
    } catch (err) {
      if (err instanceof ReferenceError && /OffscreenCanvas/.test(err.message)) {
        throw new Error(
          'A synchronous read (dataSync/arraySync/bufferSync) of a tensor on the GPU is not possible on the ' +
            'webgpu backend in Node: WebGPU buffers can only be read asynchronously. Use `await tensor.data()` ' +
            'or `await tensor.array()` (or run on wasm).',
          { cause: err },
        );
      }
      throw err;
    }
  };
  (readSync as { relign?: boolean }).relign = true;
  b.readSync = readSync;
}

/**
 * The WebGPU adapter this machine offers, without starting the webgpu backend (e.g. for `relign doctor`):
 * undefined when there is none. Throws when the `webgpu` package is needed (Node) but not installed.
 */
export async function findWebGPUAdapter(
  loadModule: (specifier: string) => Promise<unknown> = (s) => import(/* @vite-ignore */ s),
): Promise<GpuAdapterReport | undefined> {
  return probeAdapter(await ensureNavigatorGpu(loadModule));
}
