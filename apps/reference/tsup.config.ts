import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', bin: 'src/bin.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // puppeteer-core is loaded on first use by src/report/browser.ts, from the user's install (a dev dependency).
  external: [/^@tensorflow\//, /^@relign\//, 'puppeteer-core'],
});
