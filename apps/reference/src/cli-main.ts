/**
 * The `relign` command: argument parsing, config resolution, backend selection, Ctrl-C handling and the
 * subcommands. `main(argv)` returns the exit code (0 ok, 1 error, 2 bad usage or config, 130 interrupted).
 */
import { initBackend, type BackendName } from '@relign/tensor';
import { buildConfig, flagsToOverrides } from './config/load.js';
import { PRESETS, PRESET_NAMES } from './config/presets.js';
import type { RelignConfig } from './config/schema.js';
import { ConfigError, deepMerge, listFields, validateConfig } from './config/validate.js';
import { InterruptedError, type StageContext } from './context.js';
import {
  checkBeforeStages,
  formatStageTimes,
  hasRunConfig,
  pipelineStages,
  prepareRunDir,
  runPipeline,
  runStage,
  type PipelineStage,
} from './pipeline.js';
import { FIRST_PARTY_PLUGINS, pluginFor } from './plugins.js';
import { Progress } from './progress.js';
import { CONFIG_JSON_FIX, readJson, RunDir } from './run-dir.js';
import { ForeignRunDirError } from './run-ownership.js';
import { doctor, formatDoctor } from './stages/doctor.js';
import { evalStage } from './stages/eval.js';
import { frontierStage } from './stages/frontier.js';
import { generateFrom } from './stages/generate.js';
import { labelStage } from './stages/label.js';
import { pretrainStage } from './stages/pretrain.js';
import { reportStage } from './stages/report.js';
import { rewardStage } from './stages/reward.js';
import { sftStage } from './stages/sft.js';

export const COMMANDS = [
  'run',
  'pretrain',
  'sft',
  'label',
  'reward',
  'train',
  'eval',
  'frontier',
  'report',
  'generate',
  'doctor',
  'help',
] as const;
export type Command = (typeof COMMANDS)[number];

/** Flags that are not config keys. */
const CLI_FLAGS = new Set([
  'preset',
  'config',
  'resume',
  'force',
  'help',
  'h',
  'algo',
  'no-speed',
  'version',
]);
/** `generate`'s own flags. */
const GENERATE_FLAGS = new Set([
  'model',
  'tokenizer',
  'prompt',
  'n',
  'max-new-tokens',
  'temperature',
  'top-k',
  'top-p',
]);
/** Flags that never take a value. */
const BOOLEAN_FLAGS = new Set(['help', 'h', 'resume', 'force', 'no-speed', 'version']);

/** Parsed command line. */
export interface ParsedArgs {
  command: string | undefined;
  /** Last value of each flag (`true` for a flag without value). */
  flags: Map<string, string | true>;
  /** Every value of each flag, in order (for repeatable flags such as `--prompt`). */
  all: Map<string, (string | true)[]>;
  positionals: string[];
}

/**
 * Parses `relign <command> [--key value | --key=value | --flag]...`. A flag followed by another flag or by
 * nothing is `true`. Everything after `--` is positional.
 */
export function parseArgv(argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | true>();
  const all = new Map<string, (string | true)[]>();
  const positionals: string[] = [];
  let command: string | undefined;
  const set = (k: string, v: string | true) => {
    flags.set(k, v);
    all.set(k, [...(all.get(k) ?? []), v]);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') || (a.startsWith('-') && a.length === 2 && a !== '-')) {
      const body = a.replace(/^--?/, '');
      const eq = body.indexOf('=');
      if (eq >= 0) {
        set(body.slice(0, eq), body.slice(eq + 1));
      } else if (BOOLEAN_FLAGS.has(body)) {
        set(body, true);
      } else {
        const next = argv[i + 1];
        if (next === undefined || (next.startsWith('--') && next.length > 2)) set(body, true);
        else {
          set(body, next);
          i++;
        }
      }
    } else if (command === undefined) {
      command = a;
    } else {
      positionals.push(a);
    }
  }
  return { command, flags, all, positionals };
}

/** The help text. */
export function helpText(command?: string): string {
  const lines = [
    'relign — RLHF pipelines on TensorFlow.js: "make the model write positive reviews"',
    '',
    'usage: relign <command> [--preset demo|tiny|gpu] [--config file.yaml] [--run-dir DIR] [--resume] [--force]',
    '                        [--backend auto|tensorflow|webgpu|wasm|cpu] [--<section>.<key> VALUE ...]',
    '',
    'commands:',
    '  run        the whole pipeline: sft, label, reward, train (each optimizer), eval, frontier, report',
    '  pretrain   train a base model from scratch into <run>/pretrain (used with --model.base pretrain)',
    '  sft        supervised fine-tuning on review sentences',
    '  label      sample preference pairs from the SFT model, labelled by VADER through Bradley-Terry sampling',
    '  reward     train the reward model; check it against the human labels',
    '  train      RL against the reward model: --algo ppo-max|dpo|p3o-v1|p3o-v2|<installed plugin> (default: all)',
    '  eval       evaluate SFT and every trained policy (gold, judge, proxy, KL to SFT, win rates)',
    '  frontier   extra runs over frontier.klCoefs/seeds, then the KL-reward frontier',
    '  report     write <run>/report/report.html',
    '  generate   sample from a checkpoint: --model DIR|sft|base|<algo>|<algo>-step-N [--prompt TEXT]... [--n N]',
    '             [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--tokenizer DIR]',
    '  doctor     tfjs backends found, the active one, a quick speed check, GPU install help [--no-speed]',
    '',
    'config: defaults <- preset <- --config file (YAML or JSON) <- flags; every key is a flag, e.g.',
    '  --sft.steps 100  --train.algos p3o-v2,dpo  --train.iterations 20  --algos.p3o-v2.lr 1e-4',
    'The effective config is saved as <run>/config.json; later commands on the same --run-dir reuse it.',
    '--resume skips finished stages and continues an interrupted one from its checkpoint. Ctrl-C saves a',
    'checkpoint and exits (130); press it twice to quit at once.',
    'A run directory made by relign holds .relign-run.json, the list of files relign created there: a fresh',
    '`relign run` removes only those. A non-empty directory without it is refused unless --force (relign then',
    'still never removes a file it did not create).',
    `presets: ${PRESET_NAMES.map((p) => `${p} (${PRESETS[p].runDir})`).join(', ')}`,
  ];
  if (command === 'config' || command === 'run') {
    lines.push('', 'config keys:');
    for (const { path, field } of listFields()) {
      const def = Array.isArray(field.default) ? `[${field.default.join(', ')}]` : String(field.default);
      lines.push(`  ${path.padEnd(28)} ${field.type.padEnd(8)} default ${def}: ${field.description}`);
    }
    lines.push("  algos.<name>.<key>           plugin settings, checked against the plugin's schema");
  } else {
    lines.push('', 'relign help config   lists every config key');
  }
  return lines.join('\n');
}

function stringFlag(flags: Map<string, string | true>, key: string): string | undefined {
  const v = flags.get(key);
  if (v === true) throw new ConfigError(`--${key}`, [`--${key} needs a value`]);
  return v;
}

function numberFlag(flags: Map<string, string | true>, key: string): number | undefined {
  const v = stringFlag(flags, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`--${key}`, [`--${key} must be a number (got '${v}')`]);
  return n;
}

/**
 * The effective config of a command. `run` without `--resume` builds it from preset, file and flags; other
 * commands (and `run --resume`) reuse the run directory's saved `config.json` when there is one, with the
 * flags laid over it (an explicit `--preset`/`--config` on a single-stage command replaces it).
 */
export function resolveCommandConfig(
  command: string,
  parsed: ParsedArgs,
  resume: boolean,
): { cfg: RelignConfig; note?: string } {
  const configFlags = new Map([...parsed.flags].filter(([k]) => !CLI_FLAGS.has(k) && !GENERATE_FLAGS.has(k)));
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
  let parsed: ParsedArgs;
  try {
    parsed = parseArgv(argv);
  } catch (err) {
    printErr(`relign: ${(err as Error).message}`);
    return 2;
  }
  const command = parsed.command ?? 'help';
  if (command === 'help' || parsed.flags.has('help') || parsed.flags.has('h')) {
    print(helpText(command === 'help' ? parsed.positionals[0] : command));
    return 0;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    printErr(`relign: unknown command '${command}'. Commands: ${COMMANDS.join(', ')} (relign help).`);
    return 2;
  }
  if (parsed.positionals.length > 0) {
    printErr(`relign ${command}: unexpected argument '${parsed.positionals[0]}' (options are --key value).`);
    return 2;
  }

  // Ctrl-C: the first stops the current stage after its step (a checkpoint is written), the second quits.
  let controller: AbortController | undefined;
  let onSigint: (() => void) | undefined;
  const signal =
    options.signal ??
    (() => {
      controller = new AbortController();
      let presses = 0;
      onSigint = () => {
        presses++;
        if (presses === 1) {
          process.stderr.write(
            '\nrelign: stopping after the current step and saving a checkpoint (Ctrl-C again to quit now)\n',
          );
          controller!.abort();
        } else {
          process.exit(130);
        }
      };
      process.on('SIGINT', onSigint);
      return controller.signal;
    })();
  const progress = options.progress ?? new Progress();
  try {
    const resume = parsed.flags.get('resume') === true;
    const force = parsed.flags.get('force') === true;
    if (command === 'doctor') {
      const backend = stringFlag(parsed.flags, 'backend');
      const report = await doctor({
        ...(backend !== undefined ? { backend: backend as BackendName | 'auto' } : {}),
        speed: !parsed.flags.has('no-speed'),
      });
      print(formatDoctor(report));
      return 0;
    }
    const { cfg, note } = resolveCommandConfig(command, parsed, resume);
    if (command === 'train') {
      const algo = stringFlag(parsed.flags, 'algo');
      if (algo !== undefined && !cfg.train.algos.includes(algo)) {
        await pluginFor(algo); // an unknown optimizer fails here, before it is added to the saved config
        cfg.train.algos = [...cfg.train.algos, algo];
      }
    }
    if (note) progress.line(note);
    if (options.initBackend !== false) {
      const info = await initBackend(cfg.backend === 'auto' ? undefined : cfg.backend);
      progress.line(`backend: ${info.name} (${info.package})${info.gpu ? ', GPU' : ''}`);
    }

    if (command === 'generate') {
      const model = stringFlag(parsed.flags, 'model');
      if (model === undefined)
        throw new ConfigError('relign generate', [
          '--model is required (a model directory, or sft, base, <algo>, <algo>-step-N)',
        ]);
      const prompts = (parsed.all.get('prompt') ?? []).map((p) => {
        if (p === true) throw new ConfigError('--prompt', ['--prompt needs a text']);
        return p;
      });
      const tokenizer = stringFlag(parsed.flags, 'tokenizer');
      const n = numberFlag(parsed.flags, 'n');
      const maxNewTokens = numberFlag(parsed.flags, 'max-new-tokens');
      const temperature = numberFlag(parsed.flags, 'temperature');
      const topK = numberFlag(parsed.flags, 'top-k');
      const topP = numberFlag(parsed.flags, 'top-p');
      const { dir, rows } = await generateFrom(
        {
          model,
          prompts,
          seed: cfg.seed,
          ...(tokenizer !== undefined ? { tokenizer } : {}),
          ...(n !== undefined ? { n } : {}),
          ...(maxNewTokens !== undefined ? { maxNewTokens } : {}),
          ...(temperature !== undefined ? { temperature } : {}),
          ...(topK !== undefined ? { topK } : {}),
          ...(topP !== undefined ? { topP } : {}),
        },
        new RunDir(cfg.runDir),
      );
      print(`# ${dir}`);
      for (const r of rows) print(`${r.prompt} ⟶${r.response}${r.eos ? '' : ' …'}`);
      return 0;
    }

    if (command === 'run') {
      progress.line(
        `relign run: preset ${cfg.preset}, run directory ${new RunDir(cfg.runDir).root}${resume ? ' (resume)' : ''}`,
      );
      const result = await runPipeline({ cfg, resume, progress, signal, force });
      progress.line(formatStageTimes(result.stages));
      progress.line(`report: ${result.run.reportPath}`);
      return 0;
    }

    // A single stage (or, for `train` without --algo, every optimizer in turn).
    const singles: Record<string, PipelineStage[]> = {
      pretrain: [{ name: 'pretrain', run: pretrainStage }],
      sft: [{ name: 'sft', run: sftStage }],
      label: [{ name: 'label', run: labelStage }],
      reward: [{ name: 'reward', run: rewardStage }],
      eval: [{ name: 'eval', run: evalStage }],
      frontier: [{ name: 'frontier', run: frontierStage }],
      report: [{ name: 'report', run: reportStage }],
    };
    let stages = singles[command];
    if (command === 'train') {
      const algo = stringFlag(parsed.flags, 'algo');
      stages = pipelineStages(cfg).filter((s) =>
        algo !== undefined ? s.name === `train:${algo}` : s.name.startsWith('train:'),
      );
    }
    await checkBeforeStages(cfg, stages ?? []);
    const run = await prepareRunDir(cfg, true, { force });
    const ctx: StageContext = { cfg, run, progress, signal, resume };
    for (const stage of stages ?? []) await runStage(ctx, stage);
    return 0;
  } catch (err) {
    if (err instanceof InterruptedError) {
      printErr(
        `relign: ${err.message} Continue with: relign ${command} --resume --run-dir ${quoteArg(currentRunDir(parsed))}`,
      );
      return 130;
    }
    if (err instanceof ConfigError) {
      printErr(`relign: invalid ${err.message}`);
      return 2;
    }
    if (err instanceof ForeignRunDirError) {
      printErr(`relign ${command}: ${err.message}`);
      return 2;
    }
    printErr(`relign ${command}: ${(err as Error)?.message ?? String(err)}`);
    if (process.env.RELIGN_DEBUG) printErr(String((err as Error)?.stack));
    return 1;
  } finally {
    if (onSigint) process.off('SIGINT', onSigint);
  }
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
