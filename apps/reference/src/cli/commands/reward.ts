import { rewardStage } from '../../stages/reward.js';
import { stageCommand } from './command.js';

/** `relign reward`: the reward model. */
export const rewardCommand = stageCommand('reward', rewardStage, [
  'train the reward model; check it against the human labels',
]);
