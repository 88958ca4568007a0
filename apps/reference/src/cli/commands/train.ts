import { pipelineStages } from '../../pipeline.js';
import { pluginFor } from '../../plugins.js';
import { stringFlag } from '../argv.js';
import { startCommand } from '../command-config.js';
import { runStages, type CliCommand } from './command.js';

/** `relign train`: RL against the reward model, with one optimizer (`--algo`) or each configured one. */
export const trainCommand: CliCommand<'train'> = {
  name: 'train',
  help: [
    'RL against the reward model: --algo ppo-max|dpo|p3o-v1|p3o-v2|grpo|rloo|<installed plugin> (default: all,',
    'concurrently as train.parallel says)',
  ],
  options: { algo: { type: 'string' } },
  async run(parsed, io) {
    let algo: string | undefined;
    const cfg = await startCommand(trainCommand, parsed, io, async (cfg) => {
      algo = stringFlag(parsed.flags, 'algo');
      if (algo !== undefined && !cfg.train.algos.includes(algo)) {
        await pluginFor(algo); // an unknown optimizer fails here, before it is added to the saved config
        cfg.train.algos = [...cfg.train.algos, algo];
      }
    });
    const stages = pipelineStages(cfg).filter((s) =>
      algo !== undefined ? s.name === `train:${algo}` : s.name.startsWith('train:'),
    );
    return runStages(cfg, stages, io);
  },
};
