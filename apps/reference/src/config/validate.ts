/**
 * Validation of the pipeline config against {@link CONFIG_SCHEMA}: unknown keys (with the closest known key),
 * wrong types and out-of-range values are reported together, each naming its dotted key
 * (`sft.steps must be an integer >= 1 (got 0)`). Plugin sections (`algos.<name>`) are checked with the
 * plugin's own schema (`resolvePluginConfig` of @relign/core) when the plugin is known.
 */
import { resolvePluginConfig, type AlgorithmPlugin } from '@relign/core';
import {
  CONFIG_SCHEMA,
  FREE_SECTIONS,
  isField,
  type Field,
  type RelignConfig,
  type Section,
} from './schema.js';

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

/** Levenshtein distance (for "did you mean"). */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The known key closest to `key`, when close enough to be a likely typo. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function rangeText(f: Extract<Field, { type: 'number' | 'integer' }>): string {
  const lo = f.min === undefined ? '(-inf' : f.exclusiveMin ? `(${f.min}` : `[${f.min}`;
  const hi = f.max === undefined ? 'inf)' : f.exclusiveMax ? `${f.max})` : `${f.max}]`;
  return `${lo}, ${hi}`;
}

/** Checks one value; returns the problem or undefined. */
export function checkField(key: string, f: Field, value: unknown): string | undefined {
  switch (f.type) {
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return `${key} must be a ${f.type === 'integer' ? 'whole number' : 'finite number'} (got ${show(value)}): ${f.description}`;
      }
      if (f.type === 'integer' && !Number.isInteger(value)) return `${key} must be an integer (got ${value})`;
      const below = f.min !== undefined && (f.exclusiveMin ? value <= f.min : value < f.min);
      const above = f.max !== undefined && (f.exclusiveMax ? value >= f.max : value > f.max);
      if (below || above) {
        return `${key} must be in ${rangeText(f)} (got ${value}; default ${f.default}): ${f.description}`;
      }
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `${key} must be true or false (got ${show(value)})`;
    case 'string':
      return typeof value === 'string' && value.length > 0
        ? undefined
        : `${key} must be a non-empty string (got ${show(value)}): ${f.description}`;
    case 'enum':
      return typeof value === 'string' && f.values.includes(value)
        ? undefined
        : `${key} must be one of ${f.values.map((v) => `'${v}'`).join(', ')} (got ${show(value)})`;
    case 'string[]': {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) {
        return `${key} must be a list of names (got ${show(value)}); as a flag: comma-separated`;
      }
      if (f.minItems !== undefined && value.length < f.minItems) {
        return `${key} must list at least ${f.minItems} name${f.minItems === 1 ? '' : 's'}`;
      }
      if (new Set(value).size !== value.length) return `${key} lists a name twice (${show(value)})`;
      return undefined;
    }
    case 'number[]': {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
        return `${key} must be a list of numbers (got ${show(value)}); as a flag: comma-separated`;
      }
      if (f.min !== undefined && value.some((v) => (v as number) < f.min!)) {
        return `${key} values must be >= ${f.min} (got ${show(value)})`;
      }
      return undefined;
    }
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function defaultsOfSection(section: Section): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(section)) {
    out[k] = isField(v) ? (Array.isArray(v.default) ? [...v.default] : v.default) : defaultsOfSection(v);
  }
  return out;
}

/** The schema's defaults as a config object (`algos` empty). */
export function schemaDefaults(): RelignConfig {
  return { ...defaultsOfSection(CONFIG_SCHEMA), algos: {} } as unknown as RelignConfig;
}

function walk(
  section: Section,
  input: Record<string, unknown>,
  out: Record<string, unknown>,
  prefix: string,
  problems: string[],
): void {
  for (const [key, value] of Object.entries(input)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!prefix && FREE_SECTIONS.has(key)) continue;
    const node = section[key];
    if (node === undefined) {
      const known = Object.keys(section).concat(prefix ? [] : [...FREE_SECTIONS]);
      const guess = closestKey(key, known);
      problems.push(
        `unknown key '${path}'${guess ? ` (did you mean '${prefix ? `${prefix}.` : ''}${guess}'?)` : ''}; ` +
          `known keys${prefix ? ` of ${prefix}` : ''}: ${known.join(', ')}`,
      );
      continue;
    }
    if (value === undefined) continue;
    if (isField(node)) {
      const problem = checkField(path, node, value);
      if (problem) problems.push(problem);
      else out[key] = Array.isArray(value) ? [...value] : value;
    } else if (!isPlainObject(value)) {
      problems.push(
        `${path} must be a section of settings (keys: ${Object.keys(node).join(', ')}), got ${show(value)}`,
      );
    } else {
      walk(node, value, out[key] as Record<string, unknown>, path, problems);
    }
  }
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
  plugins: Readonly<Record<string, AlgorithmPlugin>> = {},
  where = 'config',
): RelignConfig {
  if (!isPlainObject(input)) {
    throw new ConfigError(where, [
      `expected an object of settings, got ${Array.isArray(input) ? 'a list' : show(input)}`,
    ]);
  }
  const problems: string[] = [];
  const out = schemaDefaults() as unknown as Record<string, unknown>;
  walk(CONFIG_SCHEMA, input, out, '', problems);
  const cfg = out as unknown as RelignConfig;
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
  if (cfg.pretrain.nEmbd % cfg.pretrain.nHead !== 0) {
    problems.push(
      `pretrain.nEmbd (${cfg.pretrain.nEmbd}) must be divisible by pretrain.nHead (${cfg.pretrain.nHead})`,
    );
  }
  // Plugin sections.
  const algos: Record<string, Record<string, unknown>> = {};
  const rawAlgos = input.algos;
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

/** Deep merge of plain objects (`b` wins; lists are replaced, not merged). */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

/** Looks up the schema field at a dotted path (`sft.steps`), or undefined. */
export function fieldAt(path: string): Field | undefined {
  let node: Field | Section = CONFIG_SCHEMA;
  for (const part of path.split('.')) {
    if (isField(node)) return undefined;
    const next: Field | Section | undefined = (node as Section)[part];
    if (next === undefined) return undefined;
    node = next;
  }
  return isField(node) ? node : undefined;
}

/** Every field of the schema with its dotted path (for help text and the README reference). */
export function listFields(section: Section = CONFIG_SCHEMA, prefix = ''): { path: string; field: Field }[] {
  const out: { path: string; field: Field }[] = [];
  for (const [k, v] of Object.entries(section)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isField(v)) out.push({ path, field: v });
    else out.push(...listFields(v, path));
  }
  return out;
}
