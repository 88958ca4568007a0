/**
 * Config schemas: one documented object per algorithm, whose defaults come from the paper, validated with
 * errors that name the field and the fix. Unknown keys are rejected (a typo must not silently fall back to a
 * default), with the closest known key suggested.
 */

interface FieldBase<T> {
  /** The default, with its source in `description` (e.g. "spec §1.9"). */
  default: T;
  /** One line for docs, `--help` and error messages. */
  description: string;
}

export interface NumberField extends FieldBase<number> {
  type: 'number' | 'integer';
  /** Inclusive bounds unless `exclusiveMin` / `exclusiveMax`. */
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

export interface BooleanField extends FieldBase<boolean> {
  type: 'boolean';
}

export interface StringField<T extends string = string> extends FieldBase<T> {
  type: 'enum';
  values: readonly T[];
}

export type ConfigField = NumberField | BooleanField | StringField;

/** A schema maps each config key to its field. */
export type ConfigSchema<C> = {
  [K in keyof C]: C[K] extends number
    ? NumberField
    : C[K] extends boolean
      ? BooleanField
      : StringField<C[K] & string>;
};

/** The defaults of a schema, as a config object. */
export function defaultsOf<C>(schema: ConfigSchema<C>): C {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema) as [string, ConfigField][]) out[key] = field.default;
  return out as C;
}

/**
 * Validates `input` against `schema` and fills in defaults. `where` names the config in messages
 * (e.g. "p3o-v2 config"). Throws one error listing every problem.
 */
export function resolveConfig<C>(schema: ConfigSchema<C>, input: unknown, where: string): C {
  if (input === undefined || input === null) return defaultsOf(schema);
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new Error(
      `${where}: expected an object of settings, got ${Array.isArray(input) ? 'an array' : typeof input}.`,
    );
  }
  const fields = schema as Record<string, ConfigField>;
  const problems: string[] = [];
  const out = defaultsOf(schema) as Record<string, unknown>;
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    const field = fields[key];
    if (!field) {
      const suggestion = closest(key, Object.keys(fields));
      problems.push(
        `unknown key '${key}'` +
          (suggestion ? ` (did you mean '${suggestion}'?)` : '') +
          `; known keys: ${Object.keys(fields).join(', ')}`,
      );
      continue;
    }
    if (value === undefined) continue;
    const problem = checkField(key, field, value);
    if (problem) problems.push(problem);
    else out[key] = value;
  }
  if (problems.length > 0) {
    throw new Error(`${where}: ${problems.length === 1 ? problems[0] : '\n  - ' + problems.join('\n  - ')}`);
  }
  return out as C;
}

function checkField(key: string, field: ConfigField, value: unknown): string | undefined {
  switch (field.type) {
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `'${key}' must be true or false (got ${show(value)})`;
    case 'enum':
      return typeof value === 'string' && (field.values as readonly string[]).includes(value)
        ? undefined
        : `'${key}' must be one of ${field.values.map((v) => `'${v}'`).join(', ')} (got ${show(value)})`;
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return `'${key}' must be a finite number (got ${show(value)}): ${field.description}`;
      }
      if (field.type === 'integer' && !Number.isInteger(value)) {
        return `'${key}' must be an integer (got ${value})`;
      }
      const lo = field.min;
      const hi = field.max;
      const belowMin = lo !== undefined && (field.exclusiveMin ? value <= lo : value < lo);
      const aboveMax = hi !== undefined && (field.exclusiveMax ? value >= hi : value > hi);
      if (belowMin || aboveMax) {
        const range =
          (lo === undefined ? '(-inf' : field.exclusiveMin ? `(${lo}` : `[${lo}`) +
          ', ' +
          (hi === undefined ? 'inf)' : field.exclusiveMax ? `${hi})` : `${hi}]`);
        return `'${key}' must be in ${range} (got ${value}); default ${field.default}: ${field.description}`;
      }
      return undefined;
    }
  }
}

function show(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : (JSON.stringify(value) ?? String(value));
}

/** The known key with the smallest edit distance, if it is close enough to be a likely typo. */
function closest(key: string, known: string[]): string | undefined {
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
