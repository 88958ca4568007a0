/**
 * @relign/core — the optimizer plugin interface and registry, config schemas, KL control, the RLHF
 * training loop (Trainer) with metrics and checkpoint/resume, and the machinery pairwise plugins run on
 * (batches of pairs, rollouts read as pairs, the pairwise optimizer loop; no algorithm's loss). The plugin
 * conformance suite is in `@relign/core/testing`.
 */
export {
  definePlugin,
  createInstance,
  resolvePluginConfig,
  isAlgorithmPlugin,
  unwrapPluginModule,
  RESOURCE_NAMES,
  type AlgorithmPlugin,
  type AnyAlgorithmPlugin,
  type ConfigOf,
  type AlgorithmInstance,
  type PluginContext,
  type PluginResources,
  type ResourceRequirements,
  type RewardModelResource,
  type UpdateContext,
  type PluginState,
  type RolloutRequirements,
  type Metrics,
} from './plugin.js';
export { loadOptimizerPluginState, optimizerPluginState, type PluginCounters } from './plugin-state.js';
export {
  configSchema,
  numberField,
  integerField,
  booleanField,
  enumField,
  stringField,
  stringListField,
  numberListField,
  sectionField,
  namedSectionsField,
  resolveConfig,
  checkConfig,
  defaultsOf,
  describeField,
  listConfigFields,
  closestKey,
  type ConfigSchema,
  type ConfigField,
  type ConfigEntries,
  type InferConfig,
  type FieldInfo,
  type NumberFieldOptions,
  type CheckConfigOptions,
} from './config.js';
export {
  registerPlugin,
  unregisterPlugin,
  registeredPlugins,
  resolvePlugin,
  pluginPackageCandidates,
  type PluginImporter,
} from './registry.js';
export {
  sequenceKl,
  FixedKlController,
  AdaptiveKlController,
  klControllerFromJSON,
  type KlController,
  type KlControllerState,
} from './kl.js';
export {
  serializePluginState,
  deserializePluginState,
  disposePluginState,
  type SerializedPluginState,
} from './state-io.js';
export {
  collectRollout,
  scoreBatch,
  sequenceSums,
  parametersFinite,
  type GenerationOptions,
  type TextDecoder,
  type ScoredRollout,
  type CollectOptions,
} from './collect.js';
export { rolloutMetrics, meanKl, RunningStats, MetricsLog } from './metrics.js';
export { newRows } from './new-rows.js';
export { checkKlCoef } from './update-context.js';
export { PromptSampler } from './prompt-sampler.js';
export {
  latestCheckpoint,
  readCheckpoint,
  loadPolicyWeights,
  writeCheckpoint,
  LATEST_FILE,
  TRAINER_STATE_FILE,
  type TrainerCheckpointState,
  type LoadedCheckpoint,
} from './checkpoint.js';
export {
  Trainer,
  weightsFingerprint,
  type TrainerOptions,
  type TrainerEvents,
  type TrainResult,
  type KlControlOptions,
  type PromptData,
} from './trainer.js';
export type { PromptRecord, PromptsInput, PromptEncoder } from './prompts.js';
export { validatePairBatch, splitPairs, pairTensors, type PairBatch } from './pairs/batch.js';
export { checkPairRollout, oldLogRatios, pairRewardDifferences, sequenceLogRatios } from './pairs/rollout.js';
export {
  PAIRWISE_OPTIMIZER_SCHEMA,
  type PairRewardScaling,
  type PairwiseOptimizerConfig,
} from './pairs/config.js';
export {
  adamwStep,
  MetricMean,
  PairwiseOptimizer,
  type PairwiseLoss,
  type PairwiseOptimizerOptions,
} from './pairs/optimizer-loop.js';
