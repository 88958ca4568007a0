/**
 * @relign/rloo — RLOO (REINFORCE Leave-One-Out; Ahmadian et al. 2024, arXiv 2402.14740) as a relign optimizer
 * plugin. The default export is the plugin; the leave-one-out advantages and the loss are exported for checks
 * and reuse.
 */
import { rlooPlugin } from './plugin.js';

export default rlooPlugin;
export { rlooPlugin, rlooConfigSchema, type RlooConfig } from './plugin.js';
export { rlooAdvantages, whitenAdvantages } from './advantages.js';
export {
  rlooLoss,
  type RlooLossInput,
  type RlooLossOptions,
  type RlooLossResult,
  type RlooLossType,
} from './loss.js';
