/**
 * A command's effective config (preset, config file, saved run config and `--<section>.<key>` flags), and
 * the start every config-reading command shares: the "using the saved config" note and the backend.
 */
import { initBackend } from '@relign/tensor';
import { buildConfig, flagsToOverrides } from '../config/load.js';
import type { RelignConfig } from '../config/schema.js';
import { deepMerge, validateConfig } from '../config/validate.js';
import { hasRunConfig } from '../pipeline.js';
import { FIRST_PARTY_PLUGINS } from '../plugins.js';
import { CONFIG_JSON_FIX, readJson, RunDir } from '../run-dir.js';
import { COMMON_OPTIONS, stringFlag, type OptionTable, type ParsedArgs } from './argv.js';
import type { CommandIO } from './commands/command.js';

/**
 * The effective config of a command. `run` without `--resume` builds it from preset, file and flags; other
 * commands (and `run --resume`) reuse the run directory's saved `config.json` when there is one, with the
 * flags laid over it (an explicit `--preset`/`--config` on a single-stage command replaces it).
 * @param options the command's own flags: these, and the common ones, are not config keys.
 */
export function resolveCommandConfig(
  command: string,
  parsed: ParsedArgs,
  resume: boolean,
  options: OptionTable = {},
): { cfg: RelignConfig; note?: string } {
  const configFlags = new Map(
    [...parsed.flags].filter(([k]) => !Object.hasOwn(COMMON_OPTIONS, k) && !Object.hasOwn(options, k)),
  );
  const preset = stringFlag(parsed.flags, 'preset');
  const file = stringFlag(parsed.flags, 'config');
  const built = buildConfig({
    ...(preset !== undefined ? { preset } : {}),
    ...(file !== undefined ? { file } : {}),
    flags: configFlags,
  });
  const explicit = preset !== undefined || file !== undefined;
  const reuse = command === 'run' ? resume : !explicit;
  if (reuse && hasRunConfig(built.runDir)) {
    const run = new RunDir(built.runDir);
    const saved = readJson<Record<string, unknown>>(run.configPath, undefined, CONFIG_JSON_FIX);
    const merged = deepMerge(saved, flagsToOverrides(configFlags, FIRST_PARTY_PLUGINS));
    const cfg = validateConfig(merged, FIRST_PARTY_PLUGINS, `${run.configPath} + flags`);
    return {
      cfg,
      note: `using the run's saved config (${run.configPath})${explicit && command === 'run' ? '; --preset/--config are ignored on resume' : ''}`,
    };
  }
  return { cfg: built };
}

/**
 * Resolves the config of `command`, lets `adjust` change it (before anything is printed), then prints the
 * saved-config note and selects the backend.
 */
export async function startCommand(
  command: { name: string; options: OptionTable },
  parsed: ParsedArgs,
  io: CommandIO,
  adjust?: (cfg: RelignConfig) => Promise<void>,
): Promise<RelignConfig> {
  const { cfg, note } = resolveCommandConfig(command.name, parsed, io.resume, command.options);
  await adjust?.(cfg);
  if (note) io.progress.line(note);
  if (io.initBackend) {
    const info = await initBackend(cfg.backend === 'auto' ? undefined : cfg.backend);
    io.progress.line(`backend: ${info.name} (${info.package})${info.gpu ? ', GPU' : ''}`);
  }
  return cfg;
}
