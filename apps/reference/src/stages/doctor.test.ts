import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describeAdapter } from '@relign/tensor';
import {
  doctor,
  formatDoctor,
  isInstalled,
  matmulSpeed,
  trainStepTime,
  type DoctorReport,
} from './doctor.js';

describe.each(TEST_BACKENDS)('doctor on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('lists the backends, marks the active one and explains GPU installs', async () => {
    const r = await doctor({ speed: false });
    expect(r.active?.name).toBe(backend);
    const names = r.backends.map((b) => b.name);
    expect(names).toEqual(['tensorflow', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
    expect(r.backends.find((b) => b.name === 'cpu')?.installed).toBe(true);
    expect(r.backends.find((b) => b.name === 'wasm')?.installed).toBe(true);
    const text = formatDoctor(r);
    expect(text).toMatch(new RegExp(`^  \\* ${backend} `, 'm'));
    expect(text).toContain('CUDA 11.2 and cuDNN 8.1');
    expect(text).toContain('npm install @tensorflow/tfjs-node-gpu@4.22.0');
    expect(text).toContain('npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0');
  });

  it('measures matmul speed consistently with its timing', async () => {
    const s = await matmulSpeed(64, 2);
    expect(s.ms).toBeGreaterThan(0);
    expect(s.gflops).toBeCloseTo((2 * 64 ** 3) / (s.ms * 1e6), 9);
  });
});

it('isInstalled tells installed packages from missing ones', () => {
  expect(isInstalled('@tensorflow/tfjs-core')).toBe(true);
  expect(isInstalled('relign-no-such-package')).toBe(false);
});

describe('doctor: WebGPU adapter and speed checks', () => {
  beforeAll(() => useBackend('wasm'));

  it('looks for a WebGPU adapter when the WebGPU packages are installed (root devDependencies)', async () => {
    const r = await doctor({ speed: false });
    expect(r.backends.find((b) => b.name === 'webgpu')?.installed).toBe(true);
    // CI (SwiftShader): the software adapter; without a Vulkan driver: null.
    expect(r.webgpuAdapter).not.toBeUndefined();
    expect(typeof r.webgpuAdapter).not.toBe('string');
    expect(formatDoctor(r)).toMatch(/^webgpu adapter: /m);
    if (r.webgpuAdapter && typeof r.webgpuAdapter === 'object') {
      expect(formatDoctor(r)).toContain(r.webgpuAdapter.vendor);
    }
  });

  it("marks a software adapter and prints each backend's matmul and training-step speed", () => {
    const swiftshader = describeAdapter({
      vendor: 'google',
      architecture: 'swiftshader',
      description: 'SwiftShader driver 5.0.0',
    });
    const r: DoctorReport = {
      node: 'v20',
      platform: 'linux x64',
      cpus: 2,
      backends: [],
      active: {
        name: 'wasm',
        package: '@tensorflow/tfjs-backend-wasm',
        gpu: false,
        reason: 'auto',
        skipped: [],
      },
      webgpuAdapter: swiftshader,
      measured: [
        {
          name: 'webgpu',
          package: 'p',
          matmul: { gflops: 0.3, ms: 900, n: 512 },
          stepMs: 1234,
          adapter: swiftshader,
        },
        { name: 'wasm', package: 'p', matmul: { gflops: 25, ms: 10.7, n: 512 }, stepMs: 56 },
        { name: 'tensorflow', error: 'failed to load: libcudart.so.11.0\nmore' },
      ],
      baseModel: { dir: '/x', present: true },
    };
    const text = formatDoctor(r);
    expect(text).toMatch(
      /^webgpu adapter: google swiftshader \(SwiftShader driver 5\.0\.0\), software — a CPU emulating a GPU/m,
    );
    expect(text).toMatch(
      /^ {2}webgpu +matmul 900\.0 ms = 0\.3 GFLOP\/s, training step 1234 ms \(google swiftshader.*software\)$/m,
    );
    expect(text).toMatch(/^ {2}wasm +matmul 10\.7 ms = 25\.0 GFLOP\/s, training step 56 ms$/m);
    expect(text).toMatch(/^ {2}tensorflow +not measured: failed to load: libcudart\.so\.11\.0$/m);
    expect(formatDoctor({ ...r, webgpuAdapter: null })).toMatch(
      /^webgpu adapter: none \(Dawn found no driver/m,
    );
  });

  it('times a training step (loss, gradients, guarded AdamW) without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const ms = await trainStepTime(0, 1);
    expect(ms).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});
