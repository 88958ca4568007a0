/**
 * Backend selection in the browser, and the trained weights as downloadable files.
 */
import type { CausalLM } from '@relign/lm';
import { initBackend, serializeSafetensors, type BackendInfo } from '@relign/tensor';

export type PageBackend = 'webgpu' | 'wasm';

/**
 * Bundled backends by package name, for `initBackend`'s module loader: the page cannot import packages by
 * name at run time, so each is a static `import()` Vite can bundle. The wasm binaries are served from `wasm/`.
 */
const MODULES: Record<string, () => Promise<unknown>> = {
  '@tensorflow/tfjs-backend-webgpu': () => import('@tensorflow/tfjs-backend-webgpu'),
  '@tensorflow/tfjs-backend-wasm': async () => {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(new URL('wasm/', document.baseURI).href);
    return wasm;
  },
};

function loadModule(specifier: string): Promise<unknown> {
  const load = MODULES[specifier];
  if (load) return load();
  // What initBackend reads as "not installed": the native tfjs-node backends do not exist in a browser.
  return Promise.reject(
    Object.assign(new Error(`${specifier} is not bundled in the page`), { code: 'ERR_MODULE_NOT_FOUND' }),
  );
}

/**
 * The backend asked for, or the best one: WebGPU on a hardware adapter, else wasm (`initBackend('auto')`
 * passes a software WebGPU adapter by, as it is slower than wasm on the same CPU).
 */
export function selectBackend(wanted?: PageBackend): Promise<BackendInfo> {
  return initBackend(wanted ?? 'auto', { loadModule, env: {} });
}

/** The policy's weights and config as files in the Hugging Face layout (what `CausalLM.save` writes to disk). */
export async function exportModel(model: CausalLM): Promise<{ safetensors: Uint8Array; config: string }> {
  return {
    safetensors: serializeSafetensors(await model.tensors(), { format: 'pt' }),
    config: JSON.stringify(model.configJSON(), null, 2) + '\n',
  };
}
