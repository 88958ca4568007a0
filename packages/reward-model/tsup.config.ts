import { defineConfig } from 'tsup';
import { browserBuild, CLEAN_KEEP_BROWSER } from '../../tsup.browser';

export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: CLEAN_KEEP_BROWSER,
    target: 'node20',
    external: [/^@tensorflow\//, /^@relign\//],
  },
  browserBuild(),
]);
