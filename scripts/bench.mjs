#!/usr/bin/env node
// Runs a package's benchmark after building it and the packages it depends on, keeping stdout for the
// benchmark's one JSON object (build logs go to stderr). Usage, from a package directory:
//   node ../../scripts/bench.mjs bench/run.mjs
import { spawnSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Relaxed SIMD on Node 20 as the `relign` CLI has it (apps/reference/src/bin.ts), so the bench measures the
// kernels users run; set before any wasm module is compiled. RELIGN_WASM_RELAXED=0 measures the plain ones.
setFlagsFromString('--experimental-wasm-relaxed-simd');

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const script = process.argv[2];
if (!script) {
  console.error('usage: node ../../scripts/bench.mjs <bench script>');
  process.exit(2);
}
const { name } = JSON.parse(readFileSync('package.json', 'utf8'));
const build = spawnSync(
  process.execPath,
  [
    resolve(root, 'node_modules/turbo/bin/turbo'),
    'run',
    'build',
    `--filter=${name}...`,
    '--output-logs=errors-only',
  ],
  { cwd: root, stdio: ['ignore', 2, 2] },
);
if (build.status !== 0) process.exit(build.status ?? 1);
await import(pathToFileURL(resolve(script)).href);
