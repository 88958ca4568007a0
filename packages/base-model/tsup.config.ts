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
    // `import.meta.url` in the CommonJS build too: the loader finds model/ next to its own dist/.
    shims: true,
    external: [/^@tensorflow\//, /^@relign\//],
  },
  browserBuild(),
]);
