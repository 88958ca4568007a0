/**
 * `require` for resolving installed packages from this module: `import.meta.url` in the ESM build,
 * `__filename` in the CommonJS build (where `import.meta` is empty), the working directory as a last resort.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export function moduleRequire(): NodeJS.Require {
  const url = (import.meta as { url?: string }).url;
  if (url) return createRequire(url);
  if (typeof __filename === 'string') return createRequire(__filename);
  return createRequire(pathToFileURL(`${process.cwd()}/`).href);
}
