/** What a `relign` command is, what it is given, and the shape shared by the single-stage commands. */
import type { RelignConfig } from '../../config/schema.js';
import type { StageContext } from '../../context.js';
import { checkBeforeStages, prepareRunDir, runStageList, type PipelineStage } from '../../pipeline.js';
import type { Progress } from '../../progress.js';
import type { OptionTable, ParsedArgs } from '../argv.js';
import { startCommand } from '../command-config.js';

/** What the dispatcher hands a command besides its arguments. */
export interface CommandIO {
  /** Plain output (stdout by default). */
  print(text: string): void;
  progress: Progress;
  /** Aborted by Ctrl-C (or by the embedder). */
  signal: AbortSignal;
  /** Whether to select the backend from the config (tests set it up themselves). */
  initBackend: boolean;
  /** `--resume` and `--force`, which every command takes. */
  resume: boolean;
  force: boolean;
}

/** One `relign <name>` command. */
export interface CliCommand<N extends string = string> {
  name: N;
  /** Its `relign help` entry: the first line follows the name, later ones are indented under it. */
  help: readonly string[];
  /** Its own flags; every command also takes the common ones, and a command that reads the config its keys. */
  options: OptionTable;
  /** Runs it; resolves to the exit code. Errors are reported (and mapped to exit codes) by the dispatcher. */
  run(parsed: ParsedArgs, io: CommandIO): Promise<number>;
}

/** Runs `stages` in the run directory of `cfg`, after checking what they need. */
export async function runStages(cfg: RelignConfig, stages: PipelineStage[], io: CommandIO): Promise<number> {
  await checkBeforeStages(cfg, stages);
  const run = await prepareRunDir(cfg, true, { force: io.force });
  const ctx: StageContext = { cfg, run, progress: io.progress, signal: io.signal, resume: io.resume };
  // `relign train` without --algo: the optimizers may run concurrently (train.parallel).
  await runStageList(ctx, stages);
  return 0;
}

/** A command that runs one pipeline stage. */
export function stageCommand<N extends string>(
  name: N,
  run: PipelineStage['run'],
  help: readonly string[],
): CliCommand<N> {
  const command: CliCommand<N> = {
    name,
    help,
    options: {},
    run: async (parsed, io) => runStages(await startCommand(command, parsed, io), [{ name, run }], io),
  };
  return command;
}
