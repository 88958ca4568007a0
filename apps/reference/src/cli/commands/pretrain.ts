import { pretrainStage } from '../../stages/pretrain.js';
import { stageCommand } from './command.js';

/** `relign pretrain`: a base model from scratch. */
export const pretrainCommand = stageCommand('pretrain', pretrainStage, [
  'train a base model from scratch into <run>/pretrain (used with --model.base pretrain)',
]);
