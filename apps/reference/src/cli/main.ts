/**
 * The `relign` dispatcher: reads the command line, answers `help`, runs the named command (one file each
 * under `commands/`) with Ctrl-C handling, and turns its errors into messages and exit codes
 * (0 ok, 1 error, 2 bad usage or config, 130 interrupted). `bin.ts` is the executable that calls {@link main}.
 */
import { PRESETS, PRESET_NAMES } from '../config/presets.js';
import { ConfigError, fieldAt } from '../config/validate.js';
import { InterruptedError } from '../context.js';
import { Progress } from '../progress.js';
import { ForeignRunDirError } from '../run-ownership.js';
import { runTrainWorker, TRAIN_WORKER_COMMAND } from '../train-worker.js';
import { COMMON_OPTIONS, parseArgv as parseWith, type OptionTable, type ParsedArgs } from './argv.js';
import { COMMAND_LIST, formatHelp, type CliCommand } from './commands/index.js';

export { resolveCommandConfig } from './command-config.js';
export type { ParsedArgs } from './argv.js';

/** A command's name. */
export type Command = (typeof COMMAND_LIST)[number]['name'] | 'help';
export const COMMANDS: readonly Command[] = [...COMMAND_LIST.map((c) => c.name), 'help'];

/** Every command's flags, so that the command line can be read before the command is known. */
const ALL_OPTIONS: OptionTable = Object.assign({}, COMMON_OPTIONS, ...COMMAND_LIST.map((c) => c.options));

/** Parses `relign <command> [--key value | --key=value | --flag]...` (see `argv.ts`). */
export function parseArgv(argv: readonly string[]): ParsedArgs {
  return parseWith(argv, ALL_OPTIONS);
}

/** The help text (every config key for `config` and `run`). */
export function helpText(command?: string): string {
  return formatHelp(COMMAND_LIST, command);
}

/** Options of {@link main} (tests and embedding). */
export interface MainOptions {
  progress?: Progress;
  /** An abort signal instead of Ctrl-C handling. */
  signal?: AbortSignal;
  /** Select the backend from the config (default true; tests set it up themselves). */
  initBackend?: boolean;
  /** Where plain output goes (default stdout). */
  print?: (text: string) => void;
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const print = options.print ?? ((t: string) => process.stdout.write(t + '\n'));
  const printErr = options.print ?? ((t: string) => process.stderr.write(t + '\n'));
  // A child process of concurrent train stages (../train-parallel.ts); not a user command.
  if (argv[0] === TRAIN_WORKER_COMMAND && argv.length === 1) return runTrainWorker();
  let parsed: ParsedArgs;
  try {
    parsed = parseArgv(argv);
  } catch (err) {
    printErr(`relign: ${(err as Error).message}`);
    return 2;
  }
  const name = parsed.command ?? 'help';
  if (name === 'help' || parsed.flags.has('help') || parsed.flags.has('h')) {
    print(helpText(name === 'help' ? parsed.positionals[0] : name));
    return 0;
  }
  const command: CliCommand | undefined = COMMAND_LIST.find((c) => c.name === name);
  if (command === undefined) {
    printErr(`relign: unknown command '${name}'. Commands: ${COMMANDS.join(', ')} (relign help).`);
    return 2;
  }
  if (parsed.positionals.length > 0) {
    printErr(`relign ${name}: unexpected argument '${parsed.positionals[0]}' (options are --key value).`);
    return 2;
  }
  // Another command's flag (`relign run --algo dpo`) would otherwise be read as an unknown config key.
  for (const flag of parsed.flags.keys()) {
    if (Object.hasOwn(COMMON_OPTIONS, flag) || Object.hasOwn(command.options, flag) || fieldAt(flag))
      continue;
    const owners = COMMAND_LIST.filter((c) => Object.hasOwn(c.options, flag)).map((c) => `relign ${c.name}`);
    if (owners.length > 0) {
      printErr(`relign ${name}: --${flag} is an option of ${owners.join(', ')}, not of relign ${name}.`);
      return 2;
    }
  }

  const sigint = options.signal === undefined ? handleCtrlC() : undefined;
  try {
    return await command.run(parsed, {
      print,
      progress: options.progress ?? new Progress(),
      signal: options.signal ?? sigint!.signal,
      initBackend: options.initBackend !== false,
      resume: parsed.flags.get('resume') === true,
      force: parsed.flags.get('force') === true,
    });
  } catch (err) {
    if (err instanceof InterruptedError) {
      printErr(
        `relign: ${err.message} Continue with: relign ${name} --resume --run-dir ${quoteArg(currentRunDir(parsed))}`,
      );
      return 130;
    }
    if (err instanceof ConfigError) {
      printErr(`relign: invalid ${err.message}`);
      return 2;
    }
    if (err instanceof ForeignRunDirError) {
      printErr(`relign ${name}: ${err.message}`);
      return 2;
    }
    printErr(`relign ${name}: ${(err as Error)?.message ?? String(err)}`);
    if (process.env.RELIGN_DEBUG) printErr(String((err as Error)?.stack));
    return 1;
  } finally {
    sigint?.dispose();
  }
}

/** Ctrl-C: the first stops the current stage after its step (a checkpoint is written), the second quits. */
function handleCtrlC(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let presses = 0;
  const onSigint = () => {
    presses++;
    if (presses === 1) {
      process.stderr.write(
        '\nrelign: stopping after the current step and saving a checkpoint (Ctrl-C again to quit now)\n',
      );
      controller.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onSigint) };
}

function currentRunDir(parsed: ParsedArgs): string {
  const v = parsed.flags.get('runDir') ?? parsed.flags.get('run-dir') ?? parsed.flags.get('dir');
  if (typeof v === 'string') return v;
  const preset = parsed.flags.get('preset');
  return typeof preset === 'string' && (PRESET_NAMES as readonly string[]).includes(preset)
    ? PRESETS[preset as keyof typeof PRESETS].runDir!
    : PRESETS.demo.runDir!;
}

function quoteArg(s: string): string {
  return /^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
