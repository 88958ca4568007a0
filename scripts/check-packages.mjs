#!/usr/bin/env node
// Publishability check: `npm pack` every workspace package, install all tarballs into an empty project,
// then import each from ESM and require it from CJS, call into it, and typecheck both module systems
// against the published .d.ts files. Run by `npm test` after the build.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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

const tarballs = packages.map(({ dir, manifest }) => {
  for (const required of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts']) {
    if (!existsSync(join(dir, required))) {
      throw new Error(`${manifest.name}: ${required} is missing. Run \`npm run build\` first.`);
    }
  }
  const out = run(npm, ['pack', '--json', '--pack-destination', join(work, 'tarballs')], dir);
  const [info] = JSON.parse(out);
  return join(work, 'tarballs', info.filename);
});

const project = join(work, 'consumer');
mkdirSync(project, { recursive: true });
writeFileSync(
  join(project, 'package.json'),
  JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }),
);
run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], project);

let failures = 0;
let passes = 0;
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

// Types: an ESM and a CJS consumer compiled against the installed .d.ts / .d.cts files.
const tensor = packages.find(({ manifest }) => manifest.name === '@relign/tensor');
if (tensor) {
  writeFileSync(
    join(project, 'esm.mts'),
    "import { initBackend, type BackendInfo } from '@relign/tensor';\nconst p: Promise<BackendInfo> = initBackend('cpu');\nvoid p;\n",
  );
  writeFileSync(
    join(project, 'cjs.cts'),
    "import tensor = require('@relign/tensor');\nconst p: Promise<tensor.BackendInfo> = tensor.initBackend('cpu');\nvoid p;\n",
  );
  // A real call from both module systems: select the cpu backend and compute.
  const call = () =>
    `const b = await m.initBackend('cpu'); if (b.name !== 'cpu') throw new Error(b.name); console.log(b.name);`;
  for (const [kind, args] of [
    ['esm', ['--input-type=module', '-e', `import * as m from '@relign/tensor'; ${call()}`]],
    [
      'cjs',
      [
        '-e',
        `(async () => { const m = require('@relign/tensor'); ${call()} })().catch((e) => { console.error(e); process.exit(1); });`,
      ],
    ],
  ]) {
    try {
      run(process.execPath, args, project);
      console.log(`ok   @relign/tensor initBackend('cpu') (${kind})`);
      passes++;
    } catch (err) {
      console.error(`FAIL @relign/tensor initBackend (${kind}): ${err.stderr || err.message}`);
      failures++;
    }
  }
  try {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    run(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        // Our .d.ts files are checked by resolving and using them below; tfjs-core's own declarations
        // reference an ambient Long type that only some installs provide, as consumers' skipLibCheck assumes.
        '--skipLibCheck',
        '--module',
        'node16',
        '--moduleResolution',
        'node16',
        '--types',
        'node',
        '--typeRoots',
        join(root, 'node_modules', '@types'),
        'esm.mts',
        'cjs.cts',
      ],
      project,
    );
    console.log('ok   types resolve for ESM (.d.ts) and CJS (.d.cts) consumers');
    passes++;
  } catch (err) {
    console.error(`FAIL types: ${err.stdout || ''}${err.stderr || err.message}`);
    failures++;
  }
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
