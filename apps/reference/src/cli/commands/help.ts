/** `relign help [config]` (also `relign <command> --help`): the help text. */
import { PRESETS, PRESET_NAMES, TASK_PRESETS } from '../../config/presets.js';
import { listFields } from '../../config/validate.js';
import type { CliCommand } from './command.js';

/** The help text: usage, each command's entry, the config rules; every config key for `config` and `run`. */
export function formatHelp(commands: readonly Pick<CliCommand, 'name' | 'help'>[], topic?: string): string {
  const lines = [
    'relign — RLHF pipelines on TensorFlow.js: "make the model write positive reviews"',
    '',
    'usage: relign <command> [--preset demo|tiny|gpu] [--task reviews|arithmetic] [--config file.yaml] [--run-dir DIR]',
    '                        [--resume] [--force]',
    '                        [--backend auto|tensorflow|webgpu|wasm|cpu] [--<section>.<key> VALUE ...]',
    '',
    'commands:',
    ...commands.flatMap(({ name, help }) =>
      help.map((line, i) => `  ${i === 0 ? name : ''}`.padEnd(13) + line),
    ),
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
    '--task arithmetic: "a+b=" problems with a checkable reward; held-out accuracy is the gold score',
    `  (its own run directories: ${PRESET_NAMES.map((p) => TASK_PRESETS.arithmetic[p].runDir).join(', ')})`,
  ];
  if (topic === 'config' || topic === 'run') {
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
