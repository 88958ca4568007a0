/**
 * Config schemas, declared once with valibot (small and tree-shakeable): the same declaration validates a
 * user's settings at run time and gives the config's static type (`InferConfig<typeof schema>`), so the two
 * cannot drift. The field builders attach each field's default (from the paper) and a one-line description,
 * which `--help` and the docs list (`listConfigFields`). Unknown keys are rejected (a typo must not silently
 * fall back to a default), with the closest known key suggested; every error names the field and its range.
 */
import * as v from 'valibot';

/** A config field: a valibot schema with a default, so the key may be left out. */
export type ConfigField<T = unknown> = v.OptionalSchema<v.GenericSchema<T>, T | (() => T)>;

/** Fields by key: the entries of a {@link ConfigSchema}. */
export type ConfigEntries = v.ObjectEntries;

/**
 * A config schema: a strict valibot object (unknown keys rejected) whose parsed output is the config `C`.
 * Build one with {@link configSchema}; any `v.strictObject` of fields with defaults fits.
 */
export interface ConfigSchema<C = Record<string, unknown>> extends v.BaseSchema<
  unknown,
  C,
  v.BaseIssue<unknown>
> {
  readonly type: 'strict_object';
  readonly entries: ConfigEntries;
}

/** The config type a schema declares (every key present, defaults filled). */
export type InferConfig<S extends v.GenericSchema> = v.InferOutput<S>;

/** A strict object of fields: the schema of a plugin's (or a section's) settings. */
export function configSchema<const E extends ConfigEntries>(entries: E): v.StrictObjectSchema<E, undefined> {
  return v.strictObject(entries);
}

interface FieldOptions<T> {
  /** The default, with its source in `description` (e.g. "docs/algorithms.md §1.9"). */
  default: T;
  /** One line for docs, `--help` and error messages. */
  description: string;
}

export interface NumberFieldOptions extends FieldOptions<number> {
  /** Inclusive bounds unless `exclusiveMin` / `exclusiveMax`. */
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

/** valibot's `pipe` is typed per arity; the builders assemble a variable list of checks. */
function piped<T>(
  schema: v.GenericSchema<T>,
  items: v.PipeItem<T, T, v.BaseIssue<unknown>>[],
): v.GenericSchema<T> {
  if (items.length === 0) return schema;
  return (v.pipe as unknown as (...parts: unknown[]) => v.GenericSchema<T>)(schema, ...items);
}

function bounds(o: NumberFieldOptions): v.PipeItem<number, number, v.BaseIssue<unknown>>[] {
  const out: v.PipeItem<number, number, v.BaseIssue<unknown>>[] = [];
  if (o.min !== undefined)
    out.push(o.exclusiveMin ? v.gtValue<number, number>(o.min) : v.minValue<number, number>(o.min));
  if (o.max !== undefined)
    out.push(o.exclusiveMax ? v.ltValue<number, number>(o.max) : v.maxValue<number, number>(o.max));
  return out;
}

/** A finite number, optionally bounded. */
export function numberField(o: NumberFieldOptions): ConfigField<number> {
  return v.optional(piped(v.number(), [v.finite(), ...bounds(o), v.description(o.description)]), o.default);
}

/** An integer, optionally bounded. */
export function integerField(o: NumberFieldOptions): ConfigField<number> {
  return v.optional(piped(v.number(), [v.integer(), ...bounds(o), v.description(o.description)]), o.default);
}

export function booleanField(o: FieldOptions<boolean>): ConfigField<boolean> {
  return v.optional(piped(v.boolean(), [v.description(o.description)]), o.default);
}

/** One of a fixed list of strings; the config type is their union. */
export function enumField<const T extends string>(
  o: FieldOptions<NoInfer<T>> & { values: readonly T[] },
): ConfigField<T> {
  return v.optional(piped(v.picklist(o.values), [v.description(o.description)]), o.default);
}

/** A non-empty string. */
export function stringField(o: FieldOptions<string>): ConfigField<string> {
  return v.optional(piped(v.string(), [v.nonEmpty(), v.description(o.description)]), o.default);
}

/** A list of distinct non-empty names (as a flag: comma-separated). */
export function stringListField(
  o: FieldOptions<readonly string[]> & { minItems?: number },
): ConfigField<string[]> {
  const items: v.PipeItem<string[], string[], v.BaseIssue<unknown>>[] = [];
  if (o.minItems !== undefined) items.push(v.minLength(o.minItems));
  items.push(v.check((list) => new Set(list).size === list.length, 'a name is listed twice'));
  items.push(v.description(o.description));
  return v.optional(piped(v.array(v.pipe(v.string(), v.nonEmpty())), items), () => [...o.default]);
}

/** A list of finite numbers, each >= `min` when given (as a flag: comma-separated). */
export function numberListField(
  o: FieldOptions<readonly number[]> & { min?: number },
): ConfigField<number[]> {
  const item = piped<number>(v.number(), [
    v.finite(),
    ...(o.min !== undefined ? [v.minValue<number, number>(o.min)] : []),
  ]);
  return v.optional(piped(v.array(item), [v.description(o.description)]), () => [...o.default]);
}

/**
 * Free-form named sections (e.g. the app's `algos.<plugin>.<key>`), each checked elsewhere against its own
 * schema; listed as a known key, but not as fields.
 */
export function namedSectionsField(o: {
  description: string;
}): ConfigField<Record<string, Record<string, unknown>>> {
  return v.optional(
    piped(v.record(v.string(), v.record(v.string(), v.unknown())), [v.description(o.description)]),
    () => ({}),
  );
}

/** A nested section of fields; left out, it takes its fields' defaults. */
export function sectionField<const E extends ConfigEntries>(
  entries: E,
): v.OptionalSchema<
  v.StrictObjectSchema<E, undefined>,
  () => v.InferInput<v.StrictObjectSchema<E, undefined>>
> {
  // An empty input parses to every default (all fields are optional with defaults).
  return v.optional(v.strictObject(entries), () => ({}) as v.InferInput<v.StrictObjectSchema<E, undefined>>);
}

/** What a field declares, read back from its schema (for help text, docs, flag parsing and the checks). */
export interface FieldInfo {
  type: 'number' | 'integer' | 'boolean' | 'enum' | 'string' | 'string[]' | 'number[]' | 'section' | 'other';
  default: unknown;
  description: string;
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
  /** Allowed values of an enum. */
  values?: readonly string[];
  /** Fewest items of a list. */
  minItems?: number;
}

type AnySchema = v.GenericSchema & {
  wrapped?: AnySchema;
  default?: unknown;
  pipe?: readonly { type: string; kind: string; requirement?: unknown; description?: string }[];
  options?: readonly string[];
  item?: AnySchema;
  entries?: ConfigEntries;
};

/** The schema under `optional`, and its default. */
function unwrap(schema: v.GenericSchema): { inner: AnySchema; default: unknown } {
  const s = schema as AnySchema;
  if (s.type === 'optional' && s.wrapped) {
    return { inner: s.wrapped, default: typeof s.default === 'function' ? s.default() : s.default };
  }
  return { inner: s, default: undefined };
}

function actionsOf(schema: AnySchema): NonNullable<AnySchema['pipe']> {
  return schema.pipe?.slice(1) ?? [];
}

/** Reads a field's declaration back from its valibot schema (builders' fields and plain valibot alike). */
export function describeField(schema: v.GenericSchema): FieldInfo {
  const { inner, default: def } = unwrap(schema);
  const info: FieldInfo = {
    type: 'other',
    default: def,
    description: v.getDescription(inner as v.SchemaWithPipe<[v.GenericSchema]>) ?? '',
  };
  const actions = actionsOf(inner);
  const has = (type: string) => actions.find((a) => a.type === type);
  switch (inner.type) {
    case 'number':
      info.type = has('integer') ? 'integer' : 'number';
      for (const a of actions) {
        if (a.type === 'min_value' || a.type === 'gt_value') {
          info.min = a.requirement as number;
          if (a.type === 'gt_value') info.exclusiveMin = true;
        } else if (a.type === 'max_value' || a.type === 'lt_value') {
          info.max = a.requirement as number;
          if (a.type === 'lt_value') info.exclusiveMax = true;
        }
      }
      break;
    case 'boolean':
      info.type = 'boolean';
      break;
    case 'picklist':
      info.type = 'enum';
      info.values = inner.options;
      break;
    case 'string':
      info.type = 'string';
      break;
    case 'array': {
      const item = inner.item ? describeField(inner.item) : undefined;
      info.type = item?.type === 'string' ? 'string[]' : item?.type === 'number' ? 'number[]' : 'other';
      if (item?.min !== undefined) info.min = item.min;
      const minLength = has('min_length');
      if (minLength) info.minItems = minLength.requirement as number;
      break;
    }
    case 'strict_object':
    case 'object':
      info.type = 'section';
      break;
  }
  return info;
}

/** Every field of a schema (sections flattened) with its dotted path. */
export function listConfigFields(
  schema: ConfigSchema<unknown> | v.GenericSchema,
  prefix = '',
): { path: string; field: FieldInfo }[] {
  const out: { path: string; field: FieldInfo }[] = [];
  const entries = unwrap(schema).inner.entries ?? {};
  for (const [key, entry] of Object.entries(entries)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const field = describeField(entry as v.GenericSchema);
    if (field.type === 'section') out.push(...listConfigFields(entry as v.GenericSchema, path));
    else if (field.type !== 'other') out.push({ path, field });
  }
  return out;
}

/** The defaults of a schema, as a config object (throws, naming the field, if a default is out of range). */
export function defaultsOf<C>(schema: ConfigSchema<C>): C {
  return resolveConfig(schema, {}, 'config defaults');
}

/** The known key with the smallest edit distance, if it is close enough to be a likely typo. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

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

export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === undefined) return 'undefined';
  return JSON.stringify(value) ?? String(value);
}

export interface CheckConfigOptions {
  /** Quote keys (`'lr' must be ...`), as plugin configs do; the app writes dotted paths bare (`sft.lr`). */
  quoteKeys?: boolean;
}

/**
 * Validates `input` (an object) against `schema`: the config with defaults filled, or every problem found,
 * one line each naming the (dotted) key: unknown keys with the closest known key, wrong types, values out of
 * range with the range and the default.
 */
export function checkConfig<C>(
  schema: ConfigSchema<C>,
  input: object,
  options: CheckConfigOptions = {},
): { ok: true; config: C } | { ok: false; problems: string[] } {
  const result = v.safeParse(schema, input);
  if (result.success) return { ok: true, config: result.output };
  const name = (path: string) => (options.quoteKeys ? `'${path}'` : path);
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const issue of result.issues) {
    const keys = (issue.path ?? []).map((p) => String(p.key));
    if (issue.type === 'strict_object' && issue.expected === 'never') {
      // valibot reports the first unknown key of an object; name them all.
      const objectPath = keys.slice(0, -1);
      const object = issue.path!.at(-1)!.input as Record<string, unknown>;
      const known = Object.keys(nodeAt(schema, objectPath).inner.entries ?? {});
      const prefix = objectPath.length > 0 ? `${objectPath.join('.')}.` : '';
      for (const key of Object.keys(object).filter((k) => !known.includes(k))) {
        if (seen.has(prefix + key)) continue;
        seen.add(prefix + key);
        const guess = closestKey(key, known);
        problems.push(
          `unknown key '${prefix}${key}'${guess ? ` (did you mean '${prefix}${guess}'?)` : ''}; ` +
            `known keys${prefix ? ` of ${objectPath.join('.')}` : ''}: ${known.join(', ')}`,
        );
      }
      continue;
    }
    // The field the issue belongs to: the deepest schema entry on its path (list items report on the list).
    let depth = 0;
    let node = unwrap(schema);
    while (depth < keys.length && node.inner.entries?.[keys[depth]!]) {
      node = unwrap(node.inner.entries[keys[depth]!] as v.GenericSchema);
      depth++;
    }
    const path = keys.slice(0, depth).join('.');
    if (seen.has(path)) continue;
    seen.add(path);
    const value = depth > 0 ? issue.path![depth - 1]!.value : input;
    const entries = node.inner.entries;
    problems.push(
      entries
        ? `${name(path)} must be a section of settings (keys: ${Object.keys(entries).join(', ')}), got ${show(value)}`
        : fieldProblem(
            name(path),
            { ...describeField(node.inner), default: node.default },
            issue,
            value,
            keys.length === depth,
            options.quoteKeys === true,
          ),
    );
  }
  return { ok: false, problems };
}

function nodeAt(schema: v.GenericSchema, keys: readonly string[]): ReturnType<typeof unwrap> {
  let node = unwrap(schema);
  for (const key of keys) node = unwrap((node.inner.entries?.[key] ?? v.unknown()) as v.GenericSchema);
  return node;
}

function rangeText(f: FieldInfo): string {
  const lo = f.min === undefined ? '(-inf' : f.exclusiveMin ? `(${f.min}` : `[${f.min}`;
  const hi = f.max === undefined ? 'inf)' : f.exclusiveMax ? `${f.max})` : `${f.max}]`;
  return `${lo}, ${hi}`;
}

/** One line for the first issue of a field, in terms of its declaration. */
function fieldProblem(
  key: string,
  f: FieldInfo,
  issue: v.BaseIssue<unknown>,
  value: unknown,
  onField: boolean,
  /** Plugin-config style (`'lr' must be in (0, inf) (got -1); default 1e-5: ...`), as before the app's. */
  quoted: boolean,
): string {
  switch (f.type) {
    case 'number':
    case 'integer':
      if (issue.type === 'integer') return `${key} must be an integer (got ${show(value)})`;
      if (/^(min|max|gt|lt)_value$/.test(issue.type)) {
        const got = quoted
          ? `(got ${show(value)}); default ${show(f.default)}`
          : `(got ${show(value)}; default ${show(f.default)})`;
        return `${key} must be in ${rangeText(f)} ${got}: ${f.description}`;
      }
      return `${key} must be a ${f.type === 'integer' ? 'whole number' : 'finite number'} (got ${show(value)}): ${f.description}`;
    case 'boolean':
      return `${key} must be true or false (got ${show(value)})`;
    case 'enum':
      return `${key} must be one of ${f.values!.map((x) => `'${x}'`).join(', ')} (got ${show(value)})`;
    case 'string':
      return `${key} must be a non-empty string (got ${show(value)}): ${f.description}`;
    case 'string[]':
      if (issue.type === 'min_length' && onField) {
        return `${key} must list at least ${f.minItems} name${f.minItems === 1 ? '' : 's'}`;
      }
      if (issue.type === 'check') return `${key} lists a name twice (${show(value)})`;
      return `${key} must be a list of names (got ${show(value)}); as a flag: comma-separated`;
    case 'number[]':
      if (issue.type === 'min_value') return `${key} values must be >= ${f.min} (got ${show(value)})`;
      return `${key} must be a list of numbers (got ${show(value)}); as a flag: comma-separated`;
    default:
      return `${key}: ${issue.message}`;
  }
}

/**
 * Validates `input` against `schema` and fills in defaults. `where` names the config in messages
 * (e.g. "p3o-v2 config"). Throws one error listing every problem.
 */
export function resolveConfig<C>(schema: ConfigSchema<C>, input: unknown, where: string): C {
  const given = input ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) {
    throw new Error(
      `${where}: expected an object of settings, got ${Array.isArray(given) ? 'an array' : typeof given}.`,
    );
  }
  const result = checkConfig(schema, given, { quoteKeys: true });
  if (result.ok) return result.config;
  const { problems } = result;
  throw new Error(`${where}: ${problems.length === 1 ? problems[0] : '\n  - ' + problems.join('\n  - ')}`);
}
