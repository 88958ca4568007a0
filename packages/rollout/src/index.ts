/**
 * @relign/rollout — rollouts for RLHF on TensorFlow.js: batched KV-cached sampling with exact per-token
 * log-probs (temperature, top-k, top-p), scoring passes (policy/reference log-probs, value head), and a
 * replay buffer of scored groups with seeded minibatches and save/load.
 */
export { generate, type PromptTokens } from './generate.js';
export {
  resolveGenerateOptions,
  tokenizerStopOptions,
  type StopTokenSource,
  type GenerateOptions,
  type SamplingOptions,
  type DistributionOptions,
} from './options.js';
export { TokenDistribution, type Draw } from './distribution.js';
export { validateRolloutBatch, responseMask, responseMaskArray, type RolloutBatch } from './batch.js';
export {
  computeLogprobs,
  computeLogprobsAndEntropy,
  computeValues,
  sequenceInputs,
  truncationSupport,
  type LogprobOptions,
  type Truncation,
  type TruncationSupport,
} from './scoring.js';
export {
  ReplayBuffer,
  collateGroups,
  type ReplayBufferOptions,
  type RolloutScores,
  type RolloutGroup,
  type RolloutMinibatch,
  type Staleness,
  type MinibatchOptions,
} from './replay-buffer.js';
export { BUFFER_MANIFEST } from './buffer-file.js';
