import type { Options } from 'tsup';

/** Neither build bundles tfjs (resolved from the user's install) nor the other relign packages. */
const EXTERNAL: Options['external'] = [/^@tensorflow\//, /^@relign\//];

/** For the Node build's `clean`: everything but the browser build's output. */
export const CLEAN_KEEP_BROWSER = ['!browser.js', '!browser.js.map'];

/**
 * The Node build of a package: `src/index.ts` as ESM and CommonJS with declarations, for Node 20. `overrides`
 * replace fields (e.g. more entries, `shims`).
 */
export function nodeBuild(overrides: Options = {}): Options {
  return {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: CLEAN_KEEP_BROWSER,
    target: 'node20',
    external: EXTERNAL,
    ...overrides,
  };
}

/**
 * The browser build every package adds to its tsup config: `src/browser.ts` as ESM for the browser platform,
 * so `#platform` (and any `browser` field of a dependency) resolves to the browser side. Types come from the Node
 * build (`dist/index.d.ts`); the browser entry exports the same names or a subset.
 */
export function browserBuild(overrides: Options = {}): Options {
  return {
    entry: { browser: 'src/browser.ts' },
    format: ['esm'],
    platform: 'browser',
    target: 'es2022',
    dts: false,
    sourcemap: true,
    // The Node build (built at the same time) cleans dist/ but keeps these files.
    clean: false,
    external: EXTERNAL,
    ...overrides,
  };
}

/** A library package's two builds: {@link nodeBuild} and {@link browserBuild}. */
export function packageBuilds(node: Options = {}, browser: Options = {}): Options[] {
  return [nodeBuild(node), browserBuild(browser)];
}
