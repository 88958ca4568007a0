import { ConfigError } from '../../config/validate.js';
import { RunDir } from '../../run-dir.js';
import { generateFrom } from '../../stages/generate.js';
import { numberFlag, stringFlag } from '../argv.js';
import { startCommand } from '../command-config.js';
import type { CliCommand } from './command.js';

/** `relign generate`: samples from a checkpoint. */
export const generateCommand: CliCommand<'generate'> = {
  name: 'generate',
  help: [
    'sample from a checkpoint: --model DIR|sft|base|<algo>|<algo>-step-N [--prompt TEXT]... [--n N]',
    '[--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--tokenizer DIR]',
  ],
  options: {
    model: { type: 'string' },
    tokenizer: { type: 'string' },
    prompt: { type: 'string', multiple: true },
    n: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
  },
  async run(parsed, io) {
    const cfg = await startCommand(generateCommand, parsed, io);
    const { flags } = parsed;
    const model = stringFlag(flags, 'model');
    if (model === undefined)
      throw new ConfigError('relign generate', [
        '--model is required (a model directory, or sft, base, <algo>, <algo>-step-N)',
      ]);
    const prompts = (parsed.all.get('prompt') ?? []).map((p) => {
      if (p === true) throw new ConfigError('--prompt', ['--prompt needs a text']);
      return p;
    });
    const tokenizer = stringFlag(flags, 'tokenizer');
    const n = numberFlag(flags, 'n');
    const maxNewTokens = numberFlag(flags, 'max-new-tokens');
    const temperature = numberFlag(flags, 'temperature');
    const topK = numberFlag(flags, 'top-k');
    const topP = numberFlag(flags, 'top-p');
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
    io.print(`# ${dir}`);
    for (const r of rows) io.print(`${r.prompt} ⟶${r.response}${r.eos ? '' : ' …'}`);
    return 0;
  },
};
