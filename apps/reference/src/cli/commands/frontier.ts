import { frontierStage } from '../../stages/frontier.js';
import { stageCommand } from './command.js';

/** `relign frontier`: the KL-reward frontier. */
export const frontierCommand = stageCommand('frontier', frontierStage, [
  'extra runs over frontier.klCoefs/seeds, then the KL-reward frontier',
]);
