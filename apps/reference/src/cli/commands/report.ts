import { reportStage } from '../../stages/report.js';
import { stageCommand } from './command.js';

/** `relign report`: the HTML report. */
export const reportCommand = stageCommand('report', reportStage, ['write <run>/report/report.html']);
