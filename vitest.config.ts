import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// One root config: every package (and app) with tests is a vitest project. Workspace imports
// (`@relign/<name>`) resolve to the package's TypeScript source, so tests never run against a stale build.
const root = fileURLToPath(new URL('.', import.meta.url));
const dirs = ['packages', 'apps'].flatMap((group) =>
  existsSync(`${root}${group}`)
    ? readdirSync(`${root}${group}`, { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(`${root}${group}/${d.name}/src`))
        .map((d) => `${group}/${d.name}`)
    : [],
);

const alias = Object.fromEntries(
  dirs
    .filter((d) => d.startsWith('packages/'))
    .flatMap((d) => {
      const name = d.slice('packages/'.length);
      const entries: [string, string][] = [[`@relign/${name}`, `${root}${d}/src/index.ts`]];
      if (existsSync(`${root}${d}/src/testing/index.ts`)) {
        entries.unshift([`@relign/${name}/testing`, `${root}${d}/src/testing/index.ts`]);
      }
      return entries;
    }),
);

// relign's wasm GEMM defaults to a thread per core; test files already run two at a time on every core, so
// GEMM threads in each would only oversubscribe the machine. Tests (and the CLIs they spawn) run on one thread
// unless RELIGN_THREADS says otherwise; packages/tensor's thread tests set their counts themselves.
const env = { RELIGN_THREADS: process.env['RELIGN_THREADS'] ?? '1' };

// The GPU path on a WebGPU adapter (CI: Chromium's SwiftShader; see test/webgpu/adapter.ts).
const webgpuProject = {
  resolve: { alias },
  test: {
    name: 'webgpu',
    root: `${root}test/webgpu`,
    env,
    include: ['**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
};

export default defineConfig({
  test: {
    // The JSON report feeds the one-line total that `npm test` prints last (scripts/check-packages.mjs).
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-results.json' },
    projects: dirs
      .map((d) => ({
        resolve: { alias },
        test: {
          name: d.split('/')[1],
          root: `${root}${d}`,
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          environment: 'node',
          env,
          // tfjs kernels are CPU-bound; tests of a package run in one worker per file, two files at a time.
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      }))
      .concat(webgpuProject),
  },
});
