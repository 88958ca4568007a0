/**
 * @relign/reference — the `relign` command as a library: the pipeline of the default task ("make the model
 * write positive reviews"), its stages, config (schema, presets, validation), run-directory layout,
 * evaluation, the KL–reward frontier and the HTML report.
 */
export {
  main,
  parseArgv,
  helpText,
  resolveCommandConfig,
  COMMANDS,
  type MainOptions,
  type ParsedArgs,
  type Command,
} from './cli/main.js';
export {
  runPipeline,
  runStage,
  pipelineStages,
  checkBeforeStages,
  prepareRunDir,
  readRunConfig,
  formatStageTimes,
  type PipelineStage,
  type RunPipelineOptions,
  type RunPipelineResult,
} from './pipeline.js';
export { CONFIG_SCHEMA, FIRST_PARTY_ALGOS, type RelignConfig } from './config/schema.js';
export { PRESETS, PRESET_NAMES, type PresetName, type PartialConfig } from './config/presets.js';
export { buildConfig, readConfigFile, flagsToOverrides, type BuildConfigOptions } from './config/load.js';
export { validateConfig, ConfigError, deepMerge, listFields, schemaDefaults } from './config/validate.js';
export { RunDir, type StageRecord, type StageStatus } from './run-dir.js';
export { RunOwnership, ForeignRunDirError, RUN_MARKER, RUN_LAYOUT } from './run-ownership.js';
export { InterruptedError, type StageContext } from './context.js';
export {
  Progress,
  ProgressTask,
  silentProgress,
  formatDuration,
  formatMetrics,
  type ProgressSink,
} from './progress.js';
export { MetricsFile, readMetrics } from './metrics-file.js';
export { FIRST_PARTY_PLUGINS, pluginFor } from './plugins.js';
export { loadTaskData, splitSentence, type TaskData, type SplitSentence } from './task/data.js';
export {
  loadStartingModel,
  loadModelDir,
  saveModelDir,
  defaultBaseModelDir,
  type ModelAndTokenizer,
  type StartingModel,
} from './task/models.js';
export { sftStage } from './stages/sft.js';
export { labelStage } from './stages/label.js';
export { rewardStage, humanAgreement } from './stages/reward.js';
export { trainStage, sweepRunName, type TrainRunSpec, type TrainRunResult } from './stages/train.js';
export { evalStage, evaluateTargets, evalTargets, type EvalTarget } from './stages/eval.js';
export { frontierStage, sweepRuns } from './stages/frontier.js';
export { reportStage } from './stages/report.js';
export { pretrainStage } from './stages/pretrain.js';
export { generateFrom, resolveModelDir, type GenerateRequest } from './stages/generate.js';
export { doctor, formatDoctor, matmulSpeed, GPU_INSTALL_HELP, type DoctorReport } from './stages/doctor.js';
export * from './eval/index.js';
export {
  writeReport,
  renderReport,
  loadRunData,
  findChromium,
  inspectHtml,
  renderFrontierPng,
  CHROMIUM_FLAGS,
  type ReportOptions,
  type RunData,
} from './report/index.js';
