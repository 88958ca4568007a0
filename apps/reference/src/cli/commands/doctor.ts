import type { BackendName } from '@relign/tensor';
import { doctor, formatDoctor } from '../../stages/doctor.js';
import { stringFlag } from '../argv.js';
import type { CliCommand } from './command.js';

/** `relign doctor`: the backends found and a speed check. It reads no config. */
export const doctorCommand: CliCommand<'doctor'> = {
  name: 'doctor',
  help: ['tfjs backends found, the active one, a quick speed check, GPU install help [--no-speed]'],
  options: { backend: { type: 'string' }, 'no-speed': { type: 'boolean' } },
  async run(parsed, io) {
    const backend = stringFlag(parsed.flags, 'backend');
    const report = await doctor({
      ...(backend !== undefined ? { backend: backend as BackendName | 'auto' } : {}),
      speed: !parsed.flags.has('no-speed'),
    });
    io.print(formatDoctor(report));
    return 0;
  },
};
