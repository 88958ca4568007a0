import type { Options } from 'tsup';

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
    external: [/^@tensorflow\//, /^@relign\//],
    ...overrides,
  };
}

/** For the Node build's `clean`: everything but the browser build's output. */
export const CLEAN_KEEP_BROWSER = ['!browser.js', '!browser.js.map'];
