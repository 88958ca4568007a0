import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { activeBackend, initBackend, type ModuleLoader } from './backend.js';
import { describeAdapter, explainSyncReads, formatAdapter } from './webgpu.js';

// The native and WebGPU packages cannot be installed on CI machines, so selection logic is tested with an
// injected loader: each fake "package" registers a tfjs backend under the real name, as the package would.

function notFound(specifier: string): Error {
  const err = new Error(`Cannot find package '${specifier}' imported from /somewhere/backend.js`);
  (err as Error & { code: string }).code = 'ERR_MODULE_NOT_FOUND';
  return err;
}

interface FakeInstall {
  [specifier: string]: () => unknown;
}

/** A loader that "installs" only the given packages; wasm is always real. */
function loaderWith(installed: FakeInstall, calls: string[] = []): ModuleLoader {
  return async (specifier) => {
    calls.push(specifier);
    if (specifier === '@tensorflow/tfjs-backend-wasm') return import('@tensorflow/tfjs-backend-wasm');
    const install = installed[specifier];
    if (!install) throw notFound(specifier);
    return install();
  };
}

const NVIDIA = {
  vendor: 'nvidia',
  architecture: 'ampere',
  device: '',
  description: 'NVIDIA GeForce RTX 3090',
};
const SWIFTSHADER = {
  vendor: 'google',
  architecture: 'swiftshader',
  device: 'swiftshader-device-subzero-',
  description: 'SwiftShader driver 5.0.0',
  isFallbackAdapter: true,
};

/** A `navigator.gpu` whose only adapter reports `info` (none for null). */
function gpuWith(info: object | null) {
  return { requestAdapter: async () => (info === null ? null : { info }) };
}

/** Installs a `webgpu` package giving `gpu` and a tfjs-backend-webgpu that registers a fake backend. */
function webgpuInstalled(gpu: object): FakeInstall {
  return {
    webgpu: () => ({ create: () => gpu, globals: {} }),
    '@tensorflow/tfjs-backend-webgpu': () => registerFake('webgpu'),
  };
}

function registerFake(name: string, init: () => tf.KernelBackend = () => new MathBackendCPU()): void {
  if (tf.findBackendFactory(name) === null) tf.registerBackend(name, init, -1);
}

afterEach(async () => {
  for (const name of ['tensorflow', 'webgpu']) {
    if (tf.findBackendFactory(name) !== null) tf.removeBackend(name);
  }
  delete (globalThis as { navigator?: unknown }).navigator;
  await tf.setBackend('cpu');
});

describe('initBackend: automatic selection', () => {
  it('skips absent optional packages and picks wasm, reporting why each was skipped', async () => {
    const calls: string[] = [];
    const info = await initBackend(undefined, { loadModule: loaderWith({}, calls), env: {} });
    expect(info.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.reason).toBe('auto');
    expect(info.skipped.map((s) => s.package)).toEqual([
      '@tensorflow/tfjs-node-gpu',
      '@tensorflow/tfjs-node',
      '@tensorflow/tfjs-backend-webgpu',
    ]);
    expect(info.skipped.every((s) => s.why.startsWith('not installed'))).toBe(true);
    expect(calls.slice(0, 3)).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', 'webgpu']);
    expect(activeBackend()?.name).toBe('wasm');
  });

  it('prefers tfjs-node-gpu over tfjs-node when both are installed', async () => {
    const info = await initBackend(undefined, {
      loadModule: loaderWith({
        '@tensorflow/tfjs-node-gpu': () => registerFake('tensorflow'),
        '@tensorflow/tfjs-node': () => registerFake('tensorflow'),
      }),
      env: {},
    });
    expect(info).toMatchObject({ name: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', gpu: true });
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('falls back to tfjs-node when the GPU build is absent', async () => {
    const info = await initBackend(undefined, {
      loadModule: loaderWith({ '@tensorflow/tfjs-node': () => registerFake('tensorflow') }),
      env: {},
    });
    expect(info).toMatchObject({ name: 'tensorflow', package: '@tensorflow/tfjs-node', gpu: false });
    expect(info.skipped).toHaveLength(1);
  });

  it('reports a package that is installed but fails to load (e.g. missing CUDA) and moves on', async () => {
    const info = await initBackend(undefined, {
      loadModule: loaderWith({
        '@tensorflow/tfjs-node-gpu': () => {
          throw new Error('libcudart.so.11.0: cannot open shared object file');
        },
      }),
      env: {},
    });
    expect(info.name).toBe('wasm');
    expect(info.skipped[0]?.why).toContain('failed to load: libcudart.so.11.0');
  });

  it('skips a backend whose initialization fails', async () => {
    const info = await initBackend(['tensorflow', 'cpu'], {
      loadModule: loaderWith({
        '@tensorflow/tfjs-node': () =>
          registerFake('tensorflow', () => {
            throw new Error('no device');
          }),
      }),
      env: {},
    });
    expect(info.name).toBe('cpu');
    expect(info.skipped.find((s) => s.package === '@tensorflow/tfjs-node')?.why).toMatch(/initialize/);
  });

  it('sets up Dawn from the webgpu package in Node before loading tfjs-backend-webgpu', async () => {
    const created: string[][] = [];
    const fakeGpu = gpuWith(NVIDIA);
    const info = await initBackend(undefined, {
      loadModule: loaderWith({
        webgpu: () => ({
          create: (flags: string[]) => {
            created.push(flags);
            return fakeGpu;
          },
          globals: { GPUBufferUsage: { MAP_READ: 1 } },
        }),
        '@tensorflow/tfjs-backend-webgpu': () => {
          // The real package needs navigator.gpu at backend creation; check that it is in place.
          registerFake('webgpu', () => {
            expect((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu).toBe(fakeGpu);
            return new MathBackendCPU();
          });
        },
      }),
      env: {},
    });
    expect(info).toMatchObject({ name: 'webgpu', gpu: true, adapter: { vendor: 'nvidia', software: false } });
    expect(created).toHaveLength(1);
    expect((globalThis as { GPUBufferUsage?: unknown }).GPUBufferUsage).toEqual({ MAP_READ: 1 });
    delete (globalThis as { GPUBufferUsage?: unknown }).GPUBufferUsage;
  });
});

describe('initBackend: forcing a backend', () => {
  it('RELIGN_BACKEND forces a backend', async () => {
    const info = await initBackend(undefined, { loadModule: loaderWith({}), env: { RELIGN_BACKEND: 'cpu' } });
    expect(info).toMatchObject({ name: 'cpu', reason: 'env' });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('an explicit argument wins over RELIGN_BACKEND', async () => {
    const info = await initBackend('wasm', { loadModule: loaderWith({}), env: { RELIGN_BACKEND: 'cpu' } });
    expect(info).toMatchObject({ name: 'wasm', reason: 'argument' });
  });

  it("'auto' ignores RELIGN_BACKEND", async () => {
    const info = await initBackend('auto', { loadModule: loaderWith({}), env: { RELIGN_BACKEND: 'cpu' } });
    expect(info.name).toBe('wasm');
  });

  it('asking for an absent native backend says what to install', async () => {
    await expect(
      initBackend(undefined, { loadModule: loaderWith({}), env: { RELIGN_BACKEND: 'tensorflow' } }),
    ).rejects.toThrow(
      /RELIGN_BACKEND=tensorflow[\s\S]*npm install @tensorflow\/tfjs-node-gpu@4\.22\.0[\s\S]*npm install @tensorflow\/tfjs-node@4\.22\.0/,
    );
  });

  it('asking for webgpu without the packages names both packages', async () => {
    await expect(initBackend('webgpu', { loadModule: loaderWith({}), env: {} })).rejects.toThrow(
      /npm install @tensorflow\/tfjs-backend-webgpu@4\.22\.0 webgpu/,
    );
  });

  it('rejects unknown backend names with the list of valid ones', async () => {
    await expect(initBackend(undefined, { env: { RELIGN_BACKEND: 'cuda' } })).rejects.toThrow(
      'RELIGN_BACKEND=cuda is not a backend. Use one of: tensorflow, webgpu, wasm, cpu',
    );
    await expect(initBackend('metal' as never, { env: {} })).rejects.toThrow(/unknown backend/);
    await expect(initBackend([], { env: {} })).rejects.toThrow(/empty list/);
  });

  it('keeps the previous backend when a forced one fails', async () => {
    await initBackend('cpu', { env: {} });
    await expect(initBackend('tensorflow', { loadModule: loaderWith({}), env: {} })).rejects.toThrow();
    expect(tf.getBackend()).toBe('cpu');
    expect(activeBackend()?.name).toBe('cpu');
  });
});

describe('initBackend: real wasm backend', () => {
  it('computes on wasm after selection', async () => {
    const info = await initBackend('wasm', { env: {} });
    expect(info.name).toBe('wasm');
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0]);
    expect(y).toBe(11);
  });
});

describe('WebGPU adapters', () => {
  it.each([
    [SWIFTSHADER, 'SwiftShader (architecture "swiftshader")'],
    [{ vendor: 'mesa', architecture: '', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }, 'llvmpipe'],
    [{ vendor: 'mesa', architecture: '', device: 'lavapipe', description: '' }, 'lavapipe'],
    [{ vendor: 'microsoft', architecture: '', description: 'Microsoft Basic Render Driver' }, 'WARP'],
    [{ vendor: 'unknown', architecture: '', description: 'x', adapterType: 'CPU' }, 'adapter type "CPU"'],
    [{ vendor: 'acme', architecture: '', description: 'y', isFallbackAdapter: true }, 'a fallback adapter'],
  ])('classifies %o as software', (info, because) => {
    const a = describeAdapter(info);
    expect(a.software).toBe(true);
    expect(a.softwareBecause).toContain(because);
    expect(formatAdapter(a)).toMatch(/, software$/);
  });

  it.each([
    NVIDIA,
    { vendor: 'apple', architecture: 'metal-3', description: '' },
    {
      vendor: 'amd',
      architecture: 'rdna-3',
      description: 'AMD Radeon RX 7900 XTX',
      adapterType: 'discrete GPU',
    },
    {
      vendor: 'intel',
      architecture: 'gen-12lp',
      description: 'Intel(R) Iris(R) Xe Graphics',
      isFallbackAdapter: false,
    },
  ])('classifies %o as hardware', (info) => {
    const a = describeAdapter(info);
    expect(a).toMatchObject({ vendor: info.vendor, architecture: info.architecture, software: false });
    expect(a.softwareBecause).toBeUndefined();
  });

  it('automatic selection passes a software adapter by for wasm, and says how to ask for it', async () => {
    const info = await initBackend(undefined, {
      loadModule: loaderWith(webgpuInstalled(gpuWith(SWIFTSHADER))),
      env: {},
    });
    expect(info.name).toBe('wasm');
    const why = info.skipped.find((s) => s.name === 'webgpu')?.why;
    expect(why).toMatch(
      /^google swiftshader \(SwiftShader driver 5\.0\.0\), software adapter: slower than wasm/,
    );
    expect(why).toContain('RELIGN_BACKEND=webgpu');
    expect(tf.findBackendFactory('webgpu')).toBeNull(); // tfjs-backend-webgpu was not even loaded
  });

  it('automatic selection takes a hardware adapter and reports it', async () => {
    const info = await initBackend(undefined, {
      loadModule: loaderWith(webgpuInstalled(gpuWith(NVIDIA))),
      env: {},
    });
    expect(info).toMatchObject({ name: 'webgpu', reason: 'auto' });
    expect(info.adapter).toEqual({ ...NVIDIA, software: false });
  });

  it.each([
    ['RELIGN_BACKEND=webgpu', undefined, { RELIGN_BACKEND: 'webgpu' }, 'env'],
    ["initBackend('webgpu')", 'webgpu' as const, {}, 'argument'],
  ])('%s uses a software adapter and marks it', async (_label, preference, env, reason) => {
    const info = await initBackend(preference, {
      loadModule: loaderWith(webgpuInstalled(gpuWith(SWIFTSHADER))),
      env,
    });
    expect(info).toMatchObject({ name: 'webgpu', reason });
    expect(info.adapter).toMatchObject({ vendor: 'google', architecture: 'swiftshader', software: true });
  });

  it('without an adapter, webgpu is skipped with how to get a driver; asked by name it fails saying so', async () => {
    const loadModule = loaderWith(webgpuInstalled(gpuWith(null)));
    const info = await initBackend(undefined, { loadModule, env: {} });
    expect(info.name).toBe('wasm');
    expect(info.skipped.find((s) => s.name === 'webgpu')?.why).toMatch(
      /^no WebGPU adapter: .*VK_ICD_FILENAMES/,
    );
    await expect(initBackend('webgpu', { loadModule, env: {} })).rejects.toThrow(/no WebGPU adapter/);
  });
});

describe('synchronous reads on webgpu in Node', () => {
  it("replace tfjs-backend-webgpu's 'OffscreenCanvas is not defined' with an error that names the fix", () => {
    const backend = {
      hasReadSyncWarned: false,
      readSync(dataId: number) {
        if (dataId === 1) return new Float32Array([1]); // already on the host: still readable
        // What tfjs-backend-webgpu 4.22's readSync does in Node for data on the GPU (`new OffscreenCanvas`).
        throw new ReferenceError('OffscreenCanvas is not defined');
      },
    };
    explainSyncReads(backend);
    expect(backend.readSync(1)).toEqual(new Float32Array([1]));
    expect(() => backend.readSync(2)).toThrow(
      /not possible on the webgpu backend in Node.*await tensor\.data\(\)/,
    );
    expect(backend.hasReadSyncWarned).toBe(true); // no misleading "reading is slow" warning first
  });
});
