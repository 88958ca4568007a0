import { formatStageTimes, runPipeline } from '../../pipeline.js';
import { RunDir } from '../../run-dir.js';
import { startCommand } from '../command-config.js';
import type { CliCommand } from './command.js';

/** `relign run`: the whole pipeline. */
export const runCommand: CliCommand<'run'> = {
  name: 'run',
  help: ['the whole pipeline: sft, label, reward, train (each optimizer), eval, frontier, report'],
  options: {},
  async run(parsed, io) {
    const cfg = await startCommand(runCommand, parsed, io);
    const { progress, resume } = io;
    progress.line(
      `relign run: preset ${cfg.preset}, run directory ${new RunDir(cfg.runDir).root}${resume ? ' (resume)' : ''}`,
    );
    const result = await runPipeline({ cfg, resume, progress, signal: io.signal, force: io.force });
    progress.line(formatStageTimes(result.stages));
    progress.line(`report: ${result.run.reportPath}`);
    return 0;
  },
};
