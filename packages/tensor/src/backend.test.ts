import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { activeBackend, initBackend, type ModuleLoader } from './backend.js';

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
    const fakeGpu = { requestAdapter: async () => null };
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
    expect(info).toMatchObject({ name: 'webgpu', gpu: true });
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
