/**
 * @relign/core — the optimizer plugin interface and registry, config schemas, KL control, and the RLHF
 * training loop (Trainer) with metrics and checkpoint/resume. The plugin conformance suite is in
 * `@relign/core/testing`.
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
export {
  validatePairBatch,
  resolveP3OOptions,
  stopGradient,
  pairQ,
  pairStats,
  P3O_DEFAULT_OPTIONS,
  checkPairRollout,
  oldLogRatios,
  pairRewardDifferences,
  sequenceLogRatios,
  splitPairs,
  pairTensors,
  adamwStep,
  MetricMean,
  PairwiseOptimizer,
  PAIRWISE_OPTIMIZER_SCHEMA,
  type PairBatch,
  type P3OOptions,
  type P3OStats,
  type P3OLossResult,
  type PairwiseLoss,
  type PairRewardScaling,
  type PairwiseOptimizerConfig,
  type PairwiseOptimizerOptions,
} from './pairwise.js';
