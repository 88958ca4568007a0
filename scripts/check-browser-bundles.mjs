#!/usr/bin/env node
// Browser-bundle check (issue 18), run by `npm test`: bundles every library package's browser entry with
// esbuild for the browser platform and fails on any Node built-in (`node:fs`, bare `fs`, `path`, `crypto`, ...)
// left in it, naming the package, the module and the chain of imports that pulls it in.
//
//   node scripts/check-browser-bundles.mjs            # the built dist (the `browser` export condition)
//   node scripts/check-browser-bundles.mjs --source   # the TypeScript source (src/browser.ts), no build needed
//   node scripts/check-browser-bundles.mjs --source tensor lm   # only these packages
//   node scripts/check-browser-bundles.mjs --entry some/file.ts  # one file (source mode)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const args = process.argv.slice(2);
const source = args.includes('--source');
const entryAt = args.indexOf('--entry');
const singleEntry = entryAt >= 0 ? resolve(args[entryAt + 1] ?? '') : undefined;
const only = args.filter((a, i) => !a.startsWith('--') && (entryAt < 0 || i !== entryAt + 1));

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const isBuiltin = (spec) =>
  spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]);

/** The library packages (apps are not bundled for the browser here: apps/playground is, by Vite). */
export function libraryPackages() {
  const dir = join(root, 'packages');
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'package.json')))
    .map((d) => ({
      dir: join(dir, d),
      short: d,
      manifest: JSON.parse(readFileSync(join(dir, d, 'package.json'), 'utf8')),
    }))
    .filter((p) => !p.manifest.private);
}

/** Source mode: `@relign/<name>` resolves to that package's src/browser.ts, as the `browser` condition would. */
const sourcePlugin = {
  name: 'relign-source',
  setup(b) {
    b.onResolve({ filter: /^@relign\/[^/]+$/ }, (a) => {
      const dir = join(root, 'packages', a.path.slice('@relign/'.length));
      const entry = join(dir, 'src', 'browser.ts');
      return existsSync(entry) ? { path: entry } : undefined;
    });
  },
};

/**
 * The object form of a package's `browser` field applied to the file its `exports` resolved to, as Vite and
 * webpack do (esbuild skips it once `exports` matched): `@huggingface/hub` maps `./dist/index.mjs` to its
 * browser build this way. Without it the check would see a Node build no browser bundler picks.
 */
const browserFieldPlugin = {
  name: 'browser-field-after-exports',
  setup(b) {
    b.onResolve({ filter: /^(@[^./][^/]*\/)?[^./][^/]*$/ }, async (a) => {
      if (a.pluginData === 'browser-field' || isBuiltin(a.path)) return undefined;
      const { resolveDir, kind, importer } = a;
      const r = await b.resolve(a.path, { resolveDir, kind, importer, pluginData: 'browser-field' });
      if (r.errors.length > 0 || r.external || !r.path.includes('node_modules')) return undefined;
      let dir = dirname(r.path);
      while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
      const browser = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).browser;
      if (!browser || typeof browser !== 'object') return undefined;
      const mapped = browser[`./${relative(dir, r.path).split('\\').join('/')}`];
      return typeof mapped === 'string' ? { path: join(dir, mapped) } : undefined;
    });
  },
};

/**
 * Bundles one entry; returns the Node built-ins it still imports as
 * `{ module, chain: [entry, ..., importer] }` (statically or through `import()`).
 */
export async function nodeImportsOf(entry, { plugins = [], conditions = ['browser'] } = {}) {
  const found = [];
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'browser',
    format: 'esm',
    conditions,
    logLevel: 'silent',
    // Files a bundler serves as assets (the base model's weights), not code.
    loader: { '.safetensors': 'file', '.txt': 'file', '.bin': 'file' },
    outdir: join(root, '.browser-check'),
    plugins: [
      ...plugins,
      browserFieldPlugin,
      {
        name: 'node-builtins',
        setup(b) {
          b.onResolve({ filter: /.*/ }, async (a) => {
            if (!isBuiltin(a.path) || a.pluginData === 'inner') return undefined;
            // A package's `browser` field may map a built-in away (`"crypto": false` in seedrandom, `util` in
            // tfjs-core): what esbuild resolves it to then is not a Node built-in, and is fine.
            const { resolveDir, kind, importer } = a;
            const r = await b.resolve(a.path, { resolveDir, kind, importer, pluginData: 'inner' });
            if (r.errors.length === 0 && !r.external) return undefined;
            found.push({ module: a.path, importer: a.importer });
            return { path: a.path, external: true };
          });
        },
      },
    ],
  });
  // The metafile's import graph, walked breadth-first from the entry, gives the shortest importer chain.
  const inputs = result.metafile.inputs;
  const rel = (p) => relative(root, p).split('\\').join('/');
  const start = rel(entry);
  const parent = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift();
    for (const imp of inputs[file]?.imports ?? []) {
      if (imp.external || parent.has(imp.path)) continue;
      parent.set(imp.path, file);
      queue.push(imp.path);
    }
  }
  return found.map(({ module, importer }) => {
    const chain = [];
    for (let f = rel(importer); f != null; f = parent.get(f)) chain.unshift(f);
    return { module, chain };
  });
}

/** The browser entry of a package: src/browser.ts (source) or what its `browser` export condition names. */
export function browserEntry({ dir, manifest }, { fromSource = source } = {}) {
  if (fromSource) {
    const src = join(dir, 'src', 'browser.ts');
    return existsSync(src) ? src : null;
  }
  const dot = manifest.exports?.['.'];
  const target = dot?.browser?.import ?? dot?.browser?.default ?? dot?.browser;
  return typeof target === 'string' ? join(dir, target) : null;
}

async function main() {
  let failures = 0;
  const targets = singleEntry
    ? [{ single: singleEntry, manifest: { name: relative(root, singleEntry) } }]
    : libraryPackages();
  for (const pkg of targets) {
    if (only.length > 0 && !only.includes(pkg.short)) continue;
    const name = pkg.manifest.name;
    const entry = pkg.single ?? browserEntry(pkg);
    if (!entry) {
      console.error(
        `FAIL ${name}: no browser entry (${source ? 'src/browser.ts' : 'package.json exports["."].browser'} is missing)`,
      );
      failures++;
      continue;
    }
    if (!existsSync(entry)) {
      console.error(`FAIL ${name}: ${relative(root, entry)} is missing. Run \`npm run build\` first.`);
      failures++;
      continue;
    }
    let left;
    try {
      left = await nodeImportsOf(entry, { plugins: source || pkg.single ? [sourcePlugin] : [] });
    } catch (err) {
      console.error(
        `FAIL ${name}: esbuild could not bundle ${relative(root, entry)} for the browser:\n${err.message}`,
      );
      failures++;
      continue;
    }
    if (left.length === 0) {
      console.log(`ok   ${name}: ${relative(root, entry)} bundles for the browser without Node built-ins`);
      continue;
    }
    failures++;
    console.error(
      `FAIL ${name}: its browser bundle still imports Node built-ins (module <- importer chain):`,
    );
    // One line per importing file, its modules together.
    const byImporter = new Map();
    for (const { module, chain } of left) {
      const key = chain.join(' -> ');
      byImporter.set(key, [...new Set([...(byImporter.get(key) ?? []), module])]);
    }
    for (const [chain, modules] of byImporter) console.error(`       ${modules.join(', ')}  <-  ${chain}`);
    if (!source && !pkg.single)
      console.error(
        `       (built files; \`node scripts/check-browser-bundles.mjs --source ${pkg.short}\` names the source files)`,
      );
  }
  if (failures > 0) {
    console.error(`check-browser-bundles: ${failures} package(s) failed`);
    process.exit(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
