/**
 * Builds the playground into dist/: the page, its bundle with the base model's files (dist/assets/, from
 * @relign/base-model) and tfjs's wasm binaries (dist/wasm/, from @tensorflow/tfjs-backend-wasm).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const packagesDir = resolve(here, '../../packages');

/**
 * Files copied into dist/<folder>/ and served from there by the dev server: tfjs's wasm binaries, which
 * tfjs-backend-wasm fetches by name (setWasmPaths). The base model's files need no entry: @relign/base-model
 * refers to them as `new URL('../model/…', import.meta.url)`, which Vite copies into dist/assets/ by itself.
 */
const STATIC: Record<string, { dir: string; files: string[] }> = {
  wasm: {
    dir: join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'),
    files: ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'],
  },
};

function staticFiles(): Plugin {
  return {
    name: 'relign-static-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const [folder, file] = (req.url ?? '').split('?')[0]!.split('/').filter(Boolean);
        const entry = folder ? STATIC[folder] : undefined;
        if (!entry || !file || !entry.files.includes(file)) return next();
        if (file.endsWith('.wasm')) res.setHeader('Content-Type', 'application/wasm');
        res.end(readFileSync(join(entry.dir, file)));
      });
    },
    generateBundle() {
      for (const [folder, { dir, files }] of Object.entries(STATIC)) {
        for (const file of files) {
          this.emitFile({
            type: 'asset',
            fileName: `${folder}/${file}`,
            source: readFileSync(join(dir, file)),
          });
        }
      }
    },
  };
}

/**
 * Fails the build when relign's code (the page or a @relign package) imports a Node built-in: Vite would replace
 * it by an empty module and the page would break only when that code runs. (tfjs and seedrandom import some
 * under Node-only branches; those are theirs and stay allowed.)
 */
function noNodeBuiltins(): Plugin {
  const builtins = new Set(builtinModules);
  const ours = (file: string) => file.startsWith(packagesDir) || file.startsWith(join(here, 'src'));
  return {
    name: 'relign-no-node-builtins',
    enforce: 'pre',
    resolveId(source, importer) {
      const bare = source.replace(/^node:/, '').split('/')[0]!;
      if (importer && ours(importer) && (source.startsWith('node:') || builtins.has(bare))) {
        this.error(
          `${importer} imports the Node built-in "${source}", which a browser does not have: the page must use the ` +
            "packages' browser entries (package.json exports['.'].browser), which import none.",
        );
      }
      return null;
    },
  };
}

/**
 * `@relign/<name>` from its TypeScript source for packages that do not yet publish a `browser` entry
 * (its built `browser` export is used as soon as the package has one and it is built).
 */
function sourceAliases(): Record<string, string> {
  const aliases: Record<string, string> = {};
  for (const name of readdirSync(packagesDir)) {
    const manifest = join(packagesDir, name, 'package.json');
    if (!existsSync(manifest)) continue;
    const browser = JSON.parse(readFileSync(manifest, 'utf8')).exports?.['.']?.browser?.default;
    if (typeof browser === 'string' && existsSync(join(packagesDir, name, browser))) continue;
    const src = ['browser.ts', 'index.ts'].map((f) => join(packagesDir, name, 'src', f)).find(existsSync);
    if (src) aliases[`@relign/${name}`] = src;
  }
  return aliases;
}

export default defineConfig({
  // Relative asset URLs: dist/ works from any folder of a static server.
  base: './',
  plugins: [noNodeBuiltins(), staticFiles()],
  resolve: { alias: sourceAliases() },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  preview: { host: '127.0.0.1', port: 4173 },
  server: { host: '127.0.0.1' },
});
