/**
 * Building the effective config: schema defaults ← preset (← the task's overlay, `TASK_PRESETS`) ← config file (YAML or JSON) ← flags
 * (`--sft.steps 100`, `--train.algos p3o-v2,dpo`, `--algos.p3o-v2.lr 1e-5`), then validation.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import { describeField, type AnyAlgorithmPlugin } from '@relign/core';
import { FIRST_PARTY_PLUGINS } from '../plugins.js';
import { PRESETS, PRESET_NAMES, TASK_PRESETS, type PresetName } from './presets.js';
import {
  assertSafeKeys,
  ConfigError,
  deepMerge,
  fieldAt,
  forbiddenKeyProblem,
  validateConfig,
} from './validate.js';
import type { RelignConfig } from './schema.js';

/**
 * Reads a config file: `.yaml`/`.yml` as YAML, `.json` as JSON, anything else as YAML (a superset of JSON).
 * @throws ConfigError naming the file and the line of a syntax error.
 */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the config file (${(err as Error).message})`]);
  }
  let value: unknown;
  const ext = extname(path).toLowerCase();
  try {
    if (ext === '.json') {
      value = JSON.parse(text);
    } else {
      value = YAML.parse(text);
    }
  } catch (err) {
    const e = err as Error & { linePos?: { line: number; col: number }[] };
    const where = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new ConfigError(path, [
      `not valid ${ext === '.json' ? 'JSON' : 'YAML'}${where}: ${e.message.split('\n')[0]}`,
    ]);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(path, ['the file must hold a mapping of settings (e.g. `sft: {steps: 100}`)']);
  }
  assertSafeKeys(value, path);
  return value as Record<string, unknown>;
}

/** Parses a flag value according to the schema field's type (kept as text when it does not parse). */
function coerce(type: string, raw: string | true): unknown {
  if (raw === true) return type === 'boolean' ? true : raw;
  switch (type) {
    case 'number':
    case 'integer': {
      const n = Number(raw);
      return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
    }
    case 'boolean':
      if (/^(true|yes|on|1)$/i.test(raw)) return true;
      if (/^(false|no|off|0)$/i.test(raw)) return false;
      return raw;
    case 'string[]':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case 'number[]':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
        .map((s) => (Number.isFinite(Number(s)) ? Number(s) : s));
    default:
      return raw;
  }
}

/** A flag value for a key of unknown type: number, boolean, or text. */
function guess(raw: string | true): unknown {
  if (raw === true) return true;
  if (/^(true|false)$/.test(raw)) return raw === 'true';
  const n = Number(raw);
  return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
}

/** Aliases of config keys accepted as flags. */
const FLAG_ALIASES: Record<string, string> = { 'run-dir': 'runDir', dir: 'runDir' };

/**
 * Turns dotted flags into a nested override object, typed by the schema (or by the plugin's schema under
 * `algos.<name>.`).
 */
export function flagsToOverrides(
  flags: ReadonlyMap<string, string | true>,
  plugins: Readonly<Record<string, AnyAlgorithmPlugin>> = FIRST_PARTY_PLUGINS,
): Record<string, unknown> {
  // Null-prototype objects, and refused prototype keys: a flag path is written into these objects.
  const out: Record<string, unknown> = Object.create(null);
  for (const [rawKey, raw] of flags) {
    const key = Object.hasOwn(FLAG_ALIASES, rawKey) ? FLAG_ALIASES[rawKey]! : rawKey;
    const problem = forbiddenKeyProblem(key);
    if (problem) throw new ConfigError(`--${rawKey}`, [problem]);
    const parts = key.split('.');
    let value: unknown;
    if (parts[0] === 'algos' && parts.length === 3) {
      const entries = plugins[parts[1]!]?.configSchema.entries;
      const entry = entries && Object.hasOwn(entries, parts[2]!) ? entries[parts[2]!] : undefined;
      const field = entry ? describeField(entry) : undefined;
      value = field ? coerce(field.type === 'enum' ? 'string' : field.type, raw) : guess(raw);
    } else {
      const field = fieldAt(key);
      value = field ? coerce(field.type, raw) : guess(raw);
    }
    let node = out;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      if (typeof node[p] !== 'object' || node[p] === null) node[p] = Object.create(null);
      node = node[p] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]!] = value;
  }
  return out;
}

export interface BuildConfigOptions {
  /** Preset name; default the file's `preset`, else 'demo'. */
  preset?: string;
  /** A YAML or JSON config file. */
  file?: string;
  /** Dotted flags (`sft.steps` → '100'). */
  flags?: ReadonlyMap<string, string | true>;
  /** A config object laid over the preset and the file, before the flags (library use). */
  config?: Record<string, unknown>;
  /** Plugins whose `algos.<name>` sections are checked with their schema. Default: the first-party four. */
  plugins?: Readonly<Record<string, AnyAlgorithmPlugin>>;
}

/**
 * The effective config: defaults ← preset ← file ← `config` ← flags, validated.
 * The run directory defaults to `runs/<preset>`.
 * @throws ConfigError naming each bad key.
 */
export function buildConfig(options: BuildConfigOptions = {}): RelignConfig {
  const plugins = options.plugins ?? FIRST_PARTY_PLUGINS;
  const fromFile = options.file ? readConfigFile(options.file) : {};
  const overrides = options.flags ? flagsToOverrides(options.flags, plugins) : {};
  const presetName =
    options.preset ??
    (typeof overrides.preset === 'string' ? overrides.preset : undefined) ??
    (typeof options.config?.preset === 'string' ? options.config.preset : undefined) ??
    (typeof fromFile.preset === 'string' ? fromFile.preset : undefined) ??
    'demo';
  if (!(PRESET_NAMES as readonly string[]).includes(presetName)) {
    throw new ConfigError('--preset', [
      `unknown preset '${presetName}'; presets: ${PRESET_NAMES.join(', ')}`,
    ]);
  }
  let preset = PRESETS[presetName as PresetName] as Record<string, unknown>;
  // A task's overlay of the preset (its own run directory, model and lengths); an unknown task is left to
  // the validation below, which names the tasks.
  const task =
    (typeof overrides.task === 'string' ? overrides.task : undefined) ??
    (typeof options.config?.task === 'string' ? options.config.task : undefined) ??
    (typeof fromFile.task === 'string' ? fromFile.task : undefined);
  if (task !== undefined && Object.hasOwn(TASK_PRESETS, task)) {
    const overlay = TASK_PRESETS[task as keyof typeof TASK_PRESETS][presetName as PresetName];
    preset = deepMerge(preset, overlay as Record<string, unknown>);
  }
  let merged = deepMerge(preset, fromFile);
  if (options.config) {
    assertSafeKeys(options.config, 'options.config');
    merged = deepMerge(merged, options.config);
  }
  merged = deepMerge(merged, overrides);
  merged.preset = presetName;
  return validateConfig(merged, plugins, options.file ? `config (${options.file} + flags)` : 'config');
}
