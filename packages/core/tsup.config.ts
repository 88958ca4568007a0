import { defineConfig } from 'tsup';
import { packageBuilds } from '../../tsup.shared';

export default defineConfig(
  packageBuilds({ entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' } }),
);
