import type { BackendName } from '@relign/tensor';
import { doctor, formatDoctor } from '../../stages/doctor.js';
import { stringFlag } from '../argv.js';
import type { CliCommand } from './command.js';
import { fitRowsFor, formatFitTable } from '../../fit.js';

/** `relign doctor`: the backends found and a speed check. It reads no config. */
export const doctorCommand: CliCommand<'doctor'> = {
  name: 'doctor',
  help: [
    'tfjs backends found, the active one, a quick speed check, GPU install help [--no-speed]',
    "--fit <hub id | config.json | all>: memory of full vs LoRA training against wasm's 4 GiB",
  ],
  options: { backend: { type: 'string' }, 'no-speed': { type: 'boolean' }, fit: { type: 'string' } },
  async run(parsed, io) {
    const fit = stringFlag(parsed.flags, 'fit');
    if (fit !== undefined) {
      io.print(formatFitTable(await fitRowsFor(fit)));
      return 0;
    }
    const backend = stringFlag(parsed.flags, 'backend');
    const report = await doctor({
      ...(backend !== undefined ? { backend: backend as BackendName | 'auto' } : {}),
      speed: !parsed.flags.has('no-speed'),
    });
    io.print(formatDoctor(report));
    return 0;
  },
};
