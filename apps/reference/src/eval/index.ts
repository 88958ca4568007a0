/**
 * Evaluation of the reference app (issue 9): labelers, per-policy evaluation (gold, judge, proxy, KL to SFT,
 * collapse signs, win rates), head-to-head, and the KL–reward frontier.
 */
export {
  goldLabeler,
  judgeLabeler,
  taskLabelers,
  type TaskLabelers,
  type LabelScope,
  type LabelerOptions,
  type JudgeOptions,
} from './labelers.js';
export {
  evaluatePolicy,
  type EvaluatePolicyOptions,
  type EvalPrompts,
  type EvalTokenizer,
  type BaselineSamples,
} from './evaluate-policy.js';
export type { EvalResult, SampleRecord, Evaluation, WinRate } from './types.js';
export { meanStd, type MeanStd } from './stats.js';
export { textTokens, distinctN, repetition } from './text-metrics.js';
export { winRate } from './win-rate.js';
export { addHeadToHead, updateHeadToHead } from './head-to-head.js';
export {
  EVAL_DIR,
  SAMPLES_DIR,
  evaluationPaths,
  writeEvaluation,
  readEvalResults,
  readSamples,
  checkEvalResult,
} from './run-files.js';
export {
  computeFrontier,
  frontierPoints,
  paretoFront,
  FRONTIER_FILE,
  type Frontier,
  type FrontierPoint,
} from './frontier.js';
