/**
 * @relign/grpo — GRPO (Group Relative Policy Optimization, Shao et al. 2024, DeepSeekMath, arXiv 2402.03300) as
 * a relign optimizer plugin, with the Dr. GRPO and DAPO loss aggregations. The default export is the plugin; the
 * group advantages and the loss are exported for checks and reuse.
 */
import { grpoPlugin } from './plugin.js';

export default grpoPlugin;
export { grpoPlugin, grpoConfigSchema, type GrpoConfig } from './plugin.js';
export {
  groupAdvantages,
  ADVANTAGE_STD_EPS,
  type AdvantageScale,
  type GroupAdvantageOptions,
} from './advantages.js';
export {
  grpoLoss,
  GRPO_LOSS_TYPES,
  type GrpoLossType,
  type GrpoLossInput,
  type GrpoLossOptions,
  type GrpoLossResult,
  type GrpoStats,
} from './loss.js';
