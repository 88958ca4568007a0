import { defineConfig } from 'tsup';
import { packageBuilds } from '../../tsup.shared';

// `import.meta.url` in the CommonJS build too: the loader finds model/ next to its own dist/.
export default defineConfig(packageBuilds({ shims: true }));
