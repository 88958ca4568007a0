import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { doctor, formatDoctor, isInstalled, matmulSpeed } from './doctor.js';

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
