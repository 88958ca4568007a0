import { sftStage } from '../../stages/sft.js';
import { stageCommand } from './command.js';

/** `relign sft`: supervised fine-tuning. */
export const sftCommand = stageCommand('sft', sftStage, ['supervised fine-tuning on review sentences']);
