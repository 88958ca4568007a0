/**
 * Validation of the pipeline config against {@link CONFIG_SCHEMA}: unknown keys (with the closest known key),
 * wrong types and out-of-range values are reported together, each naming its dotted key
 * (`sft.steps must be an integer >= 1 (got 0)`). Plugin sections (`algos.<name>`) are checked with the
 * plugin's own schema (`resolvePluginConfig` of @relign/core) when the plugin is known.
 */
import {
  checkConfig,
  closestKey,
  defaultsOf,
  listConfigFields,
  resolvePluginConfig,
  type AnyAlgorithmPlugin,
  type FieldInfo,
} from '@relign/core';
import { CONFIG_SCHEMA, type RelignConfig } from './schema.js';

/** Thrown for an invalid config; `problems` lists each problem (the message joins them). */
export class ConfigError extends Error {
  constructor(
    readonly where: string,
    readonly problems: string[],
  ) {
    super(
      `${where}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  - ` + problems.join('\n  - ')}`,
    );
    this.name = 'ConfigError';
  }
}

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === undefined) return 'undefined';
  return JSON.stringify(value) ?? String(value);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/**
 * Keys that would reach `Object.prototype` (or a constructor) when a config path is written into an object:
 * `--__proto__.temperature 0` would otherwise change every object in the process.
 */
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** The problem with a key path (dotted flag or nested config key), or undefined when it is safe. */
export function forbiddenKeyProblem(path: string): string | undefined {
  const bad = path.split('.').find((part) => FORBIDDEN_KEYS.has(part));
  return bad === undefined
    ? undefined
    : `'${path}': '${bad}' is not a config key (the keys __proto__, prototype and constructor are refused, ` +
        'as they would change every object in the process)';
}

/**
 * Throws a ConfigError if any key of `value` (at any depth) is `__proto__`, `prototype` or `constructor`.
 * JSON.parse and YAML create such keys as own properties; merging them into a config would pollute prototypes.
 */
export function assertSafeKeys(value: unknown, where: string, prefix = ''): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => assertSafeKeys(item, where, `${prefix}[${i}]`));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const key of Object.keys(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const problem = forbiddenKeyProblem(key);
    if (problem) throw new ConfigError(where, [problem.replace(`'${key}'`, `'${path}'`)]);
    assertSafeKeys((value as Record<string, unknown>)[key], where, path);
  }
}

/** The schema's defaults as a config object (`algos` empty). */
export function schemaDefaults(): RelignConfig {
  return defaultsOf(CONFIG_SCHEMA);
}

/**
 * Validates a config object (already merged from preset, file and flags) and fills in defaults.
 *
 * @param plugins plugin objects by name: `algos.<name>` sections of these are validated with their schema;
 *   sections for other names must be listed in `train.algos` (they are checked when the plugin is loaded).
 * @throws ConfigError listing every problem, each naming its dotted key.
 */
export function validateConfig(
  input: unknown,
  plugins: Readonly<Record<string, AnyAlgorithmPlugin>> = {},
  where = 'config',
): RelignConfig {
  if (!isPlainObject(input)) {
    throw new ConfigError(where, [
      `expected an object of settings, got ${Array.isArray(input) ? 'a list' : show(input)}`,
    ]);
  }
  assertSafeKeys(input, where);
  // `algos` sections are checked below, each against its plugin's schema.
  const { algos: rawAlgos, ...settings } = input;
  // train.parallel and eval.parallel are 'auto' or a number: a number (YAML `parallel: 2`) is kept as text.
  for (const key of ['train', 'eval']) {
    const section = settings[key];
    if (isPlainObject(section) && typeof section.parallel === 'number') {
      settings[key] = { ...section, parallel: String(section.parallel) };
    }
  }
  const checked = checkConfig(CONFIG_SCHEMA, settings);
  if (!checked.ok) throw new ConfigError(where, checked.problems);
  const cfg = checked.config;
  const problems: string[] = [];
  // Cross-field checks.
  if (cfg.data.promptWordsMin > cfg.data.promptWordsMax) {
    problems.push(
      `data.promptWordsMin (${cfg.data.promptWordsMin}) must be <= data.promptWordsMax (${cfg.data.promptWordsMax})`,
    );
  }
  if (cfg.model.scratch.nEmbd % cfg.model.scratch.nHead !== 0) {
    problems.push(
      `model.scratch.nEmbd (${cfg.model.scratch.nEmbd}) must be divisible by model.scratch.nHead (${cfg.model.scratch.nHead})`,
    );
  }
  for (const [key, value, what] of [
    ['train.parallel', cfg.train.parallel, 'train stages run at once'],
    ['eval.parallel', cfg.eval.parallel, 'policies evaluated at once'],
  ] as const) {
    if (!/^(auto|[1-9]\d*)$/.test(value)) {
      problems.push(`${key} must be 'auto' or a whole number >= 1 (got '${value}'): ${what}`);
    }
  }
  if (cfg.pretrain.nEmbd % cfg.pretrain.nHead !== 0) {
    problems.push(
      `pretrain.nEmbd (${cfg.pretrain.nEmbd}) must be divisible by pretrain.nHead (${cfg.pretrain.nHead})`,
    );
  }
  // Plugin sections.
  const algos: Record<string, Record<string, unknown>> = {};
  if (rawAlgos !== undefined) {
    if (!isPlainObject(rawAlgos)) {
      problems.push(
        `algos must be a section with one sub-section per optimizer (e.g. algos.p3o-v2.lr), got ${show(rawAlgos)}`,
      );
    } else {
      for (const [name, section] of Object.entries(rawAlgos)) {
        const plugin = plugins[name];
        if (!isPlainObject(section)) {
          problems.push(`algos.${name} must be a section of ${name} settings, got ${show(section)}`);
          continue;
        }
        if (plugin) {
          try {
            resolvePluginConfig(plugin, section);
          } catch (err) {
            problems.push(`algos.${name}: ${(err as Error).message.replace(/^[^:]*config: /, '')}`);
            continue;
          }
        } else if (!cfg.train.algos.includes(name)) {
          const guess = closestKey(name, [...Object.keys(plugins), ...cfg.train.algos]);
          problems.push(
            `algos.${name}: no optimizer of that name in train.algos (${cfg.train.algos.join(', ')})` +
              (guess ? `; did you mean 'algos.${guess}'?` : ''),
          );
          continue;
        }
        algos[name] = { ...section };
      }
    }
  }
  cfg.algos = algos;
  if (problems.length > 0) throw new ConfigError(where, problems);
  return cfg;
}

/**
 * Deep merge of plain objects (`b` wins; lists are replaced, not merged), into null-prototype objects so that
 * no key can reach `Object.prototype`; `__proto__`, `prototype` and `constructor` keys are refused.
 */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const source of [a, b]) {
    for (const [k, v] of Object.entries(source)) {
      const problem = forbiddenKeyProblem(k);
      if (problem) throw new ConfigError('config', [problem]);
      const prev = out[k];
      out[k] = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
    }
  }
  return out;
}

/** Every field of the schema with its dotted path (for help text and the README reference). */
export function listFields(): { path: string; field: FieldInfo }[] {
  return listConfigFields(CONFIG_SCHEMA);
}

/** Looks up the schema field at a dotted path (`sft.steps`), or undefined. */
export function fieldAt(path: string): FieldInfo | undefined {
  return listFields().find((f) => f.path === path)?.field;
}
