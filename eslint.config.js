// Flat ESLint config shared by every package: typescript-eslint's recommended rules, with the few
// exceptions numeric code needs. Formatting is prettier's job (`npm run format`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.turbo/**', '**/.pack-check/**', 'runs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // TypeScript already reports undefined names; for the plain .mjs scripts, Node's globals are a given.
      'no-undef': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Library and app code never reads a tensor synchronously: on WebGPU (and any GPU backend) a synchronous
    // read stalls the pipeline between kernels, and in Node it fails outright. Tests may.
    files: ['**/*.ts'],
    ignores: [
      '**/*.test.ts',
      '**/test-helpers.ts',
      '**/test-helpers/**',
      '**/test-fixtures.ts',
      '**/test-fixtures/**',
      '**/src/testing/**',
    ],
    rules: {
      'no-restricted-properties': [
        'error',
        ...['dataSync', 'arraySync', 'bufferSync'].map((property) => ({
          property,
          message:
            'No synchronous tensor reads in library or app code: they stall GPU backends and fail on WebGPU ' +
            'in Node. Use `await t.data()` (or `array()`, `buffer()`), and read once per step: stack the ' +
            'scalars that must reach the host into one tensor, and compute checks on the device.',
        })),
      ],
    },
  },
);
