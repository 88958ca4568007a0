import { defineConfig } from 'tsup';
import { browserBuild, CLEAN_KEEP_BROWSER } from '../../tsup.shared';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' },
    format: ['esm', 'cjs'],
    // tfjs-core's declarations use the global `Long` of @types/long without referencing it. Referencing it from
    // ours (and depending on @types/long) lets strict consumers compile without skipLibCheck, whatever `types` says.
    dts: { banner: '/// <reference types="long" />' },
    sourcemap: true,
    clean: CLEAN_KEEP_BROWSER,
    target: 'node20',
    // Backends are resolved at run time from the user's install; never bundle them.
    external: [/^@tensorflow\//, 'webgpu'],
    // ...except tfjs-core's gradient and chained-op registrations, which exist only as ESM that Node cannot load
    // (src/gradients.ts).
    noExternal: [
      '@tensorflow/tfjs-core/dist/register_all_gradients',
      '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops',
    ],
  },
  browserBuild({
    external: [/^@tensorflow\//, 'webgpu'],
    noExternal: [
      '@tensorflow/tfjs-core/dist/register_all_gradients',
      '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops',
    ],
  }),
]);
