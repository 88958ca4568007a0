import { evalStage } from '../../stages/eval.js';
import { stageCommand } from './command.js';

/** `relign eval`: evaluation of SFT and every trained policy. */
export const evalCommand = stageCommand('eval', evalStage, [
  'evaluate SFT and every trained policy (gold, judge, proxy, KL to SFT, win rates)',
]);
