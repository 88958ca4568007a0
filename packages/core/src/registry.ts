/**
 * The plugin registry: finds optimizer plugins by name, from objects registered at run time or from installed
 * packages (dynamic `import()`), so a third-party plugin works without changing core.
 *
 * Name resolution for `resolvePlugin(name)`:
 *   1. a plugin registered under `name` (`registerPlugin`);
 *   2. a package named `name` itself when it looks like one (`@scope/pkg`, `relign-plugin-foo`, or a path);
 *   3. `@relign/<name>` (the first-party plugins: `ppo-max`, `dpo`, `p3o-v1`, `p3o-v2`);
 *   4. `relign-plugin-<name>` (the convention for third-party plugins).
 * The package's default export must be an {@link AlgorithmPlugin}.
 */
import {
  isAlgorithmPlugin,
  unwrapPluginModule,
  type AlgorithmPlugin,
  type AnyAlgorithmPlugin,
} from './plugin.js';

const registered = new Map<string, AnyAlgorithmPlugin>();

/**
 * Registers a plugin object under its `name` (replacing one of the same name). A module namespace whose
 * `default` is the plugin (`registerPlugin(require('@relign/p3o-v2'))` in CommonJS) is accepted too.
 */
export function registerPlugin<C>(plugin: AlgorithmPlugin<C> | { default: AlgorithmPlugin<C> }): void {
  const unwrapped: AnyAlgorithmPlugin = unwrapPluginModule(plugin);
  const problem = isAlgorithmPlugin(unwrapped);
  if (problem !== true) throw new Error(`registerPlugin: not an AlgorithmPlugin: ${problem}.`);
  registered.set(unwrapped.name, unwrapped);
}

/** Removes a registered plugin; returns whether one was there. */
export function unregisterPlugin(name: string): boolean {
  return registered.delete(name);
}

/** Names of the plugins registered so far (installed packages are found on demand, not listed). */
export function registeredPlugins(): string[] {
  return [...registered.keys()].sort();
}

export type PluginImporter = (specifier: string) => Promise<unknown>;

const defaultImporter: PluginImporter = (specifier) => import(/* @vite-ignore */ specifier);

/** Package names tried for a plugin name, in order. */
export function pluginPackageCandidates(name: string): string[] {
  const out: string[] = [];
  if (
    name.startsWith('@') ||
    name.startsWith('.') ||
    name.startsWith('/') ||
    name.startsWith('relign-plugin-')
  ) {
    out.push(name);
  }
  if (!name.startsWith('@') && !name.startsWith('.') && !name.startsWith('/')) {
    out.push(`@relign/${name}`, `relign-plugin-${name}`);
  }
  return [...new Set(out)];
}

/**
 * Finds a plugin by name: registered objects first, then installed packages. The error lists what was tried
 * and how to make the plugin available.
 */
export async function resolvePlugin(
  name: string,
  importer: PluginImporter = defaultImporter,
): Promise<AnyAlgorithmPlugin> {
  if (typeof name !== 'string' || name.length === 0) {
    throw new Error('resolvePlugin: the plugin name must be a non-empty string (e.g. "p3o-v2").');
  }
  const found = registered.get(name);
  if (found) return found;

  const tried: string[] = [];
  for (const specifier of pluginPackageCandidates(name)) {
    let mod: unknown;
    try {
      mod = await importer(specifier);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const missing =
        (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') &&
        (e.message ?? '').includes(specifier);
      if (missing) {
        tried.push(`${specifier} (not installed)`);
        continue;
      }
      throw new Error(`resolvePlugin('${name}'): loading ${specifier} failed: ${e?.message ?? String(err)}`);
    }
    const unwrapped = unwrapPluginModule(mod);
    const candidate =
      isAlgorithmPlugin(unwrapped) === true ? unwrapped : ((mod as { default?: unknown })?.default ?? mod);
    const problem = isAlgorithmPlugin(candidate);
    if (problem !== true) {
      throw new Error(
        `resolvePlugin('${name}'): ${specifier} was found but its default export is not an AlgorithmPlugin ` +
          `(${problem}). A plugin package must \`export default definePlugin({...})\`.`,
      );
    }
    registered.set(name, candidate as AnyAlgorithmPlugin);
    return candidate as AnyAlgorithmPlugin;
  }
  throw new Error(
    `resolvePlugin('${name}'): no plugin of that name. Tried: registered plugins ` +
      `[${registeredPlugins().join(', ') || 'none'}], ${tried.join(', ')}. Install the plugin package ` +
      `(e.g. \`npm install @relign/${name}\`) or call registerPlugin(plugin).`,
  );
}
