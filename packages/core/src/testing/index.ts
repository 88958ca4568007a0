/**
 * @relign/core/testing — the optimizer-plugin conformance suite (run it in every plugin's tests) and a
 * minimal example plugin.
 */
export {
  conformanceChecks,
  describeConformance,
  checkMetrics,
  countLowIdsReward,
  CONFORMANCE_DEFAULTS,
  type ConformanceCheck,
  type ConformanceCheckName,
  type ConformanceOptions,
  type TestRegistrar,
} from './conformance.js';
export { reinforcePlugin, type ReinforceConfig } from './reinforce-plugin.js';
export {
  snapshotParameters,
  countChangedParameters,
  relativeParameterDifference,
  maxAbsParameterDifference,
  pairRollout,
  countTokenReward,
  rewardTranslationRun,
  countTokenLearningRun,
  type ParameterSnapshot,
  type LearningRunOptions,
  type RewardTranslationOptions,
} from './pairwise.js';
export { trainerProbe, type TrainerProbeOptions } from './trainer-probe.js';
