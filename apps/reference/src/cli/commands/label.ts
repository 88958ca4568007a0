import { labelStage } from '../../stages/label.js';
import { stageCommand } from './command.js';

/** `relign label`: preference pairs. */
export const labelCommand = stageCommand('label', labelStage, [
  'sample preference pairs from the SFT model, labelled by VADER through Bradley-Terry sampling',
]);
