#!/usr/bin/env node
// Publishability check, run by `npm test` after the build:
// - the committed lock file is one `npm ci` accepts (`npm ci --dry-run`);
// - `npm pack` every workspace package; install only @relign/p3o-v2's closure into an empty project and print
//   its node_modules size (it must stay under INSTALL_LIMIT_MB);
// - install all tarballs into another empty project, import each entry point from ESM and require it from CJS,
//   call into tensor (backend, a gradient) and base-model (load, forward);
// - typecheck a strict consumer (`--strict`, no skipLibCheck, `types: ["node"]`) of every entry point from both
//   module systems, together with every TypeScript block of the READMEs and CONTRIBUTING.md
//   (scripts/doc-blocks.mjs), against the installed .d.ts files.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docFiles, extractBlocks, mapDiagnostics } from './doc-blocks.mjs';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const work = join(root, '.pack-check');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const packages = ['packages', 'apps']
  .filter((group) => existsSync(join(root, group)))
  .flatMap((group) => readdirSync(join(root, group)).map((d) => join(root, group, d)))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ manifest }) => !manifest.private);

if (packages.length === 0) {
  console.error('check-packages: no publishable packages found');
  process.exit(1);
}

rmSync(work, { recursive: true, force: true });
mkdirSync(join(work, 'tarballs'), { recursive: true });
const run = (cmd, args, cwd) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** Runs node; throws (with stdout/stderr) on a non-zero exit, else returns both streams. */
const spawnNode = (args, cwd) => {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0)
    throw Object.assign(new Error(`exit ${r.status}`), { stdout: r.stdout, stderr: r.stderr });
  return r;
};
const bannerSeen = [];

let failures = 0;
let passes = 0;
const check = (label, fn) => {
  try {
    const detail = fn();
    console.log(`ok   ${label}${detail ? ` (${detail})` : ''}`);
    passes++;
  } catch (err) {
    console.error(`FAIL ${label}: ${err.stdout || ''}${err.stderr || err.message}`);
    failures++;
  }
};

// The lock file: `npm ci` (the README's quick start and .ci/run) refuses one that is out of sync with the
// package.json files, or that lacks other platforms' optional packages.
check('npm ci --dry-run accepts package-lock.json', () => {
  run(npm, ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], root);
});

const tarballByName = new Map();
const tarballs = packages.map(({ dir, manifest }) => {
  for (const required of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts']) {
    if (!existsSync(join(dir, required))) {
      throw new Error(`${manifest.name}: ${required} is missing. Run \`npm run build\` first.`);
    }
  }
  const out = run(npm, ['pack', '--json', '--pack-destination', join(work, 'tarballs')], dir);
  const [info] = JSON.parse(out);
  const tarball = join(work, 'tarballs', info.filename);
  tarballByName.set(manifest.name, tarball);
  return tarball;
});

const emptyProject = (name) => {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, version: '1.0.0' }));
  return dir;
};
const install = (dir, specs) =>
  run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', ...specs], dir);

// Install size: what a user of one plugin downloads. Only the closure's tarballs (dependencies and peers).
const INSTALL_LIMIT_MB = 150;
const closure = (name, seen = new Set()) => {
  const pkg = packages.find(({ manifest }) => manifest.name === name);
  if (!pkg || seen.has(name)) return seen;
  seen.add(name);
  const { dependencies = {}, peerDependencies = {} } = pkg.manifest;
  for (const dep of [...Object.keys(dependencies), ...Object.keys(peerDependencies)]) closure(dep, seen);
  return seen;
};
if (tarballByName.has('@relign/p3o-v2')) {
  const names = [...closure('@relign/p3o-v2')];
  const sized = emptyProject('p3o-v2-only');
  install(
    sized,
    names.map((n) => tarballByName.get(n)),
  );
  const kb = Number(run('du', ['-sk', 'node_modules'], sized).split(/\s/)[0]);
  const mb = kb / 1024;
  console.log(
    `install size of @relign/p3o-v2 with its closure (${names.length} relign packages): ${mb.toFixed(1)} MB`,
  );
  check(`p3o-v2 install under ${INSTALL_LIMIT_MB} MB`, () => {
    if (mb >= INSTALL_LIMIT_MB) throw new Error(`${mb.toFixed(1)} MB of node_modules`);
    return `${mb.toFixed(1)} MB`;
  });
}

const project = emptyProject('consumer');
install(project, tarballs);

for (const { manifest } of packages) {
  const subpaths = Object.keys(manifest.exports ?? { '.': {} }).filter((k) => k !== './package.json');
  for (const sub of subpaths) {
    const spec = sub === '.' ? manifest.name : `${manifest.name}/${sub.slice(2)}`;
    const esm = `import * as m from '${spec}'; const n = Object.keys(m).length; if (!n) throw new Error('no exports'); console.log(n);`;
    const cjs = `const m = require('${spec}'); const n = Object.keys(m).length; if (!n) throw new Error('no exports'); console.log(n);`;
    for (const [kind, args] of [
      ['esm', ['--input-type=module', '-e', esm]],
      ['cjs', ['-e', cjs]],
    ]) {
      try {
        const n = run(process.execPath, args, project).trim();
        console.log(`ok   ${spec} (${kind}, ${n} exports)`);
        passes++;
      } catch (err) {
        console.error(`FAIL ${spec} (${kind}): ${err.stderr || err.message}`);
        failures++;
      }
    }
  }
}

// Calls from both module systems, on the installed packages only (no @tensorflow/tfjs): tensor selects the cpu
// backend and takes a gradient through ops that tfjs-core's Node build registers no gradient for; base-model
// loads and runs its model.
const has = (name) => tarballByName.has(name);
const calls = [];
if (has('@relign/tensor')) {
  calls.push([
    "@relign/tensor initBackend('cpu') and tf.grad",
    `const tf = await load('@tensorflow/tfjs-core'); const m = await load('@relign/tensor');
     const b = await m.initBackend('cpu'); if (b.name !== 'cpu') throw new Error(b.name);
     const x = tf.tensor1d([1, -2, 3]);
     const g = await tf.grad((v) => tf.sum(tf.abs(v).mul(tf.softplus(v))))(x).data();
     if (!(Math.abs(g[1] - 0.1114778) < 1e-4)) throw new Error('wrong gradient ' + g);`,
  ]);
}
if (has('@relign/base-model')) {
  calls.push([
    '@relign/base-model loadBaseModel() and a forward pass',
    `const tf = await load('@tensorflow/tfjs-core'); const t = await load('@relign/tensor');
     const m = await load('@relign/base-model'); await t.initBackend('cpu');
     const { model, tokenizer } = await m.loadBaseModel({ trainable: false });
     const ids = tf.tensor2d([tokenizer.encode('The food was')], undefined, 'int32');
     const { logits } = model.forward(ids);
     if (logits.shape[2] !== 1024 || tokenizer.vocabSize !== 1024) throw new Error(String(logits.shape));`,
  ]);
}
for (const [label, body] of calls) {
  for (const [kind, args] of [
    ['esm', ['--input-type=module', '-e', `const load = (s) => import(s);\n${body}`]],
    [
      'cjs',
      [
        '-e',
        `const load = async (s) => require(s);\n(async () => {\n${body}\n})().catch((e) => { console.error(e); process.exit(1); });`,
      ],
    ],
  ]) {
    check(`${label} (${kind})`, () => {
      const { stderr } = spawnNode(args, project);
      // tfjs's "Hi, looks like you are running TensorFlow.js in Node.js" banner must not reach users.
      if (/looks like you are running TensorFlow\.js/.test(stderr)) bannerSeen.push(`${label} (${kind})`);
    });
  }
}

// Types: a strict consumer of every entry point, from ESM (.d.ts) and CJS (.d.cts), and every TypeScript block
// of the docs, in one program. No skipLibCheck and `types: ["node"]` only: tfjs-core's own declarations must
// compile as installed (they need @types/long, which @relign/tensor provides and references).
const typesDir = join(project, 'consumers');
mkdirSync(typesDir, { recursive: true });
const include = ['consumers'];
for (const { manifest } of packages) {
  const subpaths = Object.keys(manifest.exports ?? { '.': {} }).filter((k) => k !== './package.json');
  for (const sub of subpaths) {
    const spec = sub === '.' ? manifest.name : `${manifest.name}/${sub.slice(2)}`;
    const base = spec.replace(/^@/, '').replace(/\//g, '-');
    writeFileSync(
      join(typesDir, `${base}.mts`),
      `import * as m from '${spec}';\nexport const keys = Object.keys(m);\n`,
    );
    writeFileSync(
      join(typesDir, `${base}.cts`),
      `import m = require('${spec}');\nexport const keys = Object.keys(m);\n`,
    );
  }
}
if (has('@relign/tensor')) {
  writeFileSync(
    join(typesDir, 'tensor-call.mts'),
    "import { initBackend, type BackendInfo } from '@relign/tensor';\nexport const p: Promise<BackendInfo> = initBackend('cpu');\n",
  );
  writeFileSync(
    join(typesDir, 'tensor-call.cts'),
    "import tensor = require('@relign/tensor');\nexport const p: Promise<tensor.BackendInfo> = tensor.initBackend('cpu');\n",
  );
}
// The plugin typing a user relies on (issue: typed plugins): `registerPlugin(p3oV2)`, the conformance suite and a
// Trainer whose `pluginConfig` is typed from the plugin, so that a misspelled key is a compile error (the
// `@ts-expect-error` lines fail the check if the error ever goes away).
if (has('@relign/core') && has('@relign/p3o-v2') && has('@relign/lm')) {
  writeFileSync(
    join(typesDir, 'plugin-typing.mts'),
    `import { registerPlugin, Trainer, type ConfigOf } from '@relign/core';
import { describeConformance } from '@relign/core/testing';
import type { CausalLM } from '@relign/lm';
import p3oV2 from '@relign/p3o-v2';
import { describe, it } from 'vitest';

registerPlugin(p3oV2);
describeConformance({ describe, it }, p3oV2, { config: { clipRange: 0.1 } });
declare const policy: CausalLM;
const common = {
  policy,
  prompts: [[1, 2, 3]],
  reward: () => 0,
  generation: { maxNewTokens: 4, stopTokenIds: [0] },
  promptsPerIteration: 1,
  iterations: 1,
};
export const ok = new Trainer({ ...common, plugin: p3oV2, pluginConfig: { lr: 1e-4 } });
// @ts-expect-error: 'lrr' is not a key of P3O-V2's config
export const typo = new Trainer({ ...common, plugin: p3oV2, pluginConfig: { lrr: 1e-4 } });
// @ts-expect-error: lr is a number
export const wrongType: Partial<ConfigOf<typeof p3oV2>> = { lr: 'fast' };
`,
  );
}
// Doc blocks: one folder per document (an ES module package, so top-level await compiles), one file per block.
const written = new Map();
let skippedBlocks = 0;
for (const doc of docFiles(root)) {
  const folder = join('docs', doc.replace(/\.md$/, '').replace(/\//g, '-'));
  for (const block of extractBlocks(root, doc)) {
    if (block.skip) {
      skippedBlocks++;
      continue;
    }
    const rel = join(folder, block.file);
    mkdirSync(dirname(join(project, rel)), { recursive: true });
    const setupLines = block.setup ? block.setup.split('\n').length : 0;
    writeFileSync(
      join(project, rel),
      `${block.setup ? `${block.setup}\n` : ''}${block.code}\n\nexport {};\n`,
    );
    written.set(rel, { block, setupLines });
  }
  if (existsSync(join(project, folder))) {
    writeFileSync(join(project, folder, 'package.json'), JSON.stringify({ type: 'module' }));
    include.push(folder);
  }
}
writeFileSync(join(project, 'docs', 'package.json'), JSON.stringify({ type: 'module' }));
// Modules the docs import that the consumer does not install: vitest (the test files shown; the part of its API
// they use) and CONTRIBUTING §4's example third-party plugin (the plugin of its §2).
writeFileSync(
  join(project, 'docs', 'stubs.d.ts'),
  `declare module 'relign-plugin-my-algo' {
  const plugin: import('@relign/core').AlgorithmPlugin<{ lr: number; epochs: number; clipRange: number }>;
  export default plugin;
}
declare module 'vitest' {
  type Body = () => unknown;
  export const describe: ((name: string, body: () => void) => void) & {
    each<T>(cases: readonly T[]): (name: string, body: (c: T) => void) => void;
  };
  export function it(name: string, fn: () => Promise<void>, timeout?: number): void;
  export function beforeAll(fn: Body): void;
  export function afterAll(fn: Body): void;
}
`,
);
// Only Node's types, from the monorepo (the consumer installs no @types/node).
mkdirSync(join(project, 'typeroots'), { recursive: true });
symlinkSync(join(root, 'node_modules', '@types', 'node'), join(project, 'typeroots', 'node'), 'dir');
writeFileSync(
  join(project, 'tsconfig.json'),
  JSON.stringify(
    {
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module: 'node16',
        moduleResolution: 'node16',
        types: ['node'],
        typeRoots: ['./typeroots'],
      },
      include: [...include, 'docs/stubs.d.ts'],
    },
    null,
    2,
  ),
);
check(
  `strict types of every entry point (ESM and CJS) and ${written.size} doc blocks (${skippedBlocks} marked no-check)`,
  () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], project);
    } catch (err) {
      err.stdout = mapDiagnostics(err.stdout || '', written);
      throw err;
    }
  },
);
if (bannerSeen.length > 0) {
  console.log(`note: tfjs's Node.js banner printed in: ${bannerSeen.join(', ')}`);
}

console.log(`\npackages: ${passes} passed, ${failures} failed`);

// One closing line for the whole `npm test`: vitest's totals (from its JSON report) plus these checks.
const results = join(root, '.vitest-results.json');
if (existsSync(results)) {
  const r = JSON.parse(readFileSync(results, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(
    `tests: ${r.numPassedTests + passes} passed, ${r.numFailedTests + failures} failed, ${skipped} skipped`,
  );
}
if (failures === 0) rmSync(work, { recursive: true, force: true });
process.exit(failures === 0 ? 0 : 1);
