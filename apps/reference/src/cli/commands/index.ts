/** Every `relign` command but `help` (which the dispatcher answers), in the order `relign help` lists them. */
import { doctorCommand } from './doctor.js';
import { evalCommand } from './eval.js';
import { frontierCommand } from './frontier.js';
import { generateCommand } from './generate.js';
import { labelCommand } from './label.js';
import { pretrainCommand } from './pretrain.js';
import { reportCommand } from './report.js';
import { rewardCommand } from './reward.js';
import { runCommand } from './run.js';
import { sftCommand } from './sft.js';
import { trainCommand } from './train.js';

export const COMMAND_LIST = [
  runCommand,
  pretrainCommand,
  sftCommand,
  labelCommand,
  rewardCommand,
  trainCommand,
  evalCommand,
  frontierCommand,
  reportCommand,
  generateCommand,
  doctorCommand,
] as const;

export type { CliCommand, CommandIO } from './command.js';
export { formatHelp } from './help.js';
