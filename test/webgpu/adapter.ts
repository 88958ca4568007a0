/**
 * Starts the webgpu backend for this project's tests. Without an adapter the tests are skipped with a
 * message, unless RELIGN_REQUIRE_WEBGPU=1 (CI sets it where Chromium's SwiftShader is installed): then the
 * adapter test fails, so CI cannot pass by skipping.
 */
import { it } from 'vitest';
import { formatAdapter, initBackend, type BackendInfo } from '@relign/tensor';

export const REQUIRED = process.env['RELIGN_REQUIRE_WEBGPU'] === '1';

/** How to get the software adapter these tests use in CI. */
export const HOW =
  'Install WebGPU for Node (root devDependencies `webgpu`, `@tensorflow/tfjs-backend-webgpu`) and a Vulkan ' +
  "driver; for SwiftShader from Debian's chromium package: LD_LIBRARY_PATH=/usr/lib/chromium " +
  'VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json';

export interface WebGPUStart {
  info?: BackendInfo;
  /** Why webgpu could not start. */
  why?: string;
}

/** `initBackend('webgpu')`; never throws (the caller decides between skip and fail). */
export async function startWebGPU(file: string): Promise<WebGPUStart> {
  try {
    const info = await initBackend('webgpu');
    return { info };
  } catch (err) {
    const why = (err as Error).message;
    if (!REQUIRED) {
      console.warn(
        `${file}: SKIPPED — no WebGPU: ${why}\n${HOW}; set RELIGN_REQUIRE_WEBGPU=1 to make this a failure.`,
      );
    }
    return { why };
  }
}

/** The first test of each file: passes with an adapter, fails without one when required, else is skipped. */
export function itHasAdapter(start: WebGPUStart): void {
  it.skipIf(!start.info && !REQUIRED)('webgpu has an adapter', () => {
    if (!start.info)
      throw new Error(`RELIGN_REQUIRE_WEBGPU=1 but webgpu did not start: ${start.why}\n${HOW}`);
    console.log(`webgpu adapter: ${start.info.adapter ? formatAdapter(start.info.adapter) : 'unknown'}`);
  });
}
