/**
 * The command line, read with Node's `util.parseArgs`: `relign <command> [--key value | --key=value | --flag]...`.
 *
 * `parseArgs` needs every option declared, but the config keys are open-ended (`--sft.steps`,
 * `--algos.<any installed plugin>.<key>`), so one step comes first: a flag that is not a declared boolean
 * takes the next argument as its value (written `--key=value` for `parseArgs`) unless that is another
 * `--flag`, `--` or nothing, in which case the flag is `true`. That keeps `--train.klCoef -1` a value and
 * `--some.bool --sft.steps 10` two flags. Everything after `--` is positional.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../config/validate.js';

/** Declared options, in `parseArgs`'s form. */
export type OptionTable = NonNullable<ParseArgsConfig['options']>;

/** Flags every command takes (besides its own and, for the commands that read the config, config keys). */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  h: { type: 'boolean' },
  version: { type: 'boolean' },
  preset: { type: 'string' },
  config: { type: 'string' },
  resume: { type: 'boolean' },
  force: { type: 'boolean' },
} as const satisfies OptionTable;

/** Parsed command line. */
export interface ParsedArgs {
  command: string | undefined;
  /** Last value of each flag (`true` for a flag without value). */
  flags: Map<string, string | true>;
  /** Every value of each flag, in order (for repeatable flags such as `--prompt`). */
  all: Map<string, (string | true)[]>;
  positionals: string[];
}

/** `--name` or `-n` (one letter) → its name; anything else (values, `-`, `--`, `-1.5`) → undefined. */
function flagName(arg: string): string | undefined {
  if (arg.startsWith('--') && arg.length > 2) return arg.slice(2);
  if (/^-[A-Za-z]$/.test(arg)) return arg.slice(1);
  return undefined;
}

/** Joins each non-boolean flag with its value (`--key value` → `--key=value`), as the module comment says. */
function joinValues(argv: readonly string[], options: OptionTable): string[] {
  const isBoolean = (name: string) =>
    Object.entries(options).some(([long, o]) => o.type === 'boolean' && (long === name || o.short === name));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const name = flagName(arg);
    const next = argv[i + 1];
    if (name === undefined || name.includes('=') || isBoolean(name)) {
      out.push(arg);
    } else if (next === undefined || next === '--' || next.startsWith('--')) {
      out.push(`--${name}`);
    } else {
      out.push(`--${name}=${next}`);
      i++;
    }
  }
  return out;
}

/**
 * Parses `argv` (without the node and script paths). `options` declares the flags that are booleans and
 * the known ones; any other flag is kept too (a config key, checked later against the schema).
 * @throws Error for a boolean flag given a value (`--resume=yes`).
 */
export function parseArgv(argv: readonly string[], options: OptionTable): ParsedArgs {
  // Only the booleans are declared: a declared text option would take the next argument even when it is a
  // flag, and joinValues has already joined every value to its flag.
  const booleans = Object.fromEntries(Object.entries(options).filter(([, o]) => o.type === 'boolean'));
  const { tokens } = parseArgs({
    args: joinValues(argv, booleans),
    options: booleans,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const flags = new Map<string, string | true>();
  const all = new Map<string, (string | true)[]>();
  const positionals: string[] = [];
  let command: string | undefined;
  let terminated = false;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') {
      terminated = true;
    } else if (t.kind === 'positional') {
      if (command === undefined && !terminated) command = t.value;
      else positionals.push(t.value);
    } else {
      if (t.value !== undefined && Object.hasOwn(booleans, t.name)) {
        throw new Error(`${t.rawName} takes no value (got '${t.rawName}=${t.value}').`);
      }
      const value = t.value ?? true;
      flags.set(t.name, value);
      all.set(t.name, [...(all.get(t.name) ?? []), value]);
    }
  }
  return { command, flags, all, positionals };
}

/** The value of a text flag, if given. @throws ConfigError when the flag has no value. */
export function stringFlag(flags: ReadonlyMap<string, string | true>, key: string): string | undefined {
  const v = flags.get(key);
  if (v === true) throw new ConfigError(`--${key}`, [`--${key} needs a value`]);
  return v;
}

/** The value of a numeric flag, if given. @throws ConfigError when it has no value or is not a number. */
export function numberFlag(flags: ReadonlyMap<string, string | true>, key: string): number | undefined {
  const v = stringFlag(flags, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`--${key}`, [`--${key} must be a number (got '${v}')`]);
  return n;
}
