/**
 * @relign/reward-model — rewards for relign: one interface for everything that scores responses (learned
 * reward models, programmatic labelers, weighted sums and penalties), PPO-max reward normalisation,
 * Bradley–Terry reward-model training, and preference labelling by Bradley–Terry sampling.
 */
export type { TokenIds, RewardInputs, RewardInputKind, RewardTokenizer } from './inputs.js';
export {
  rewardFunction,
  batchRewardFunction,
  checkScores,
  type RewardFunction,
  type ScoreOptions,
  type RowInfo,
  type ProgrammaticRewardOptions,
} from './reward-function.js';
export {
  weightedSum,
  lengthPenalty,
  missingEosPenalty,
  type WeightedReward,
  type WeightedSumReward,
  type LengthPenaltyOptions,
  type MissingEosPenaltyOptions,
} from './compose.js';
export {
  RewardNormalizer,
  normalizedReward,
  REWARD_STATS_FILE,
  type RewardNormalizerOptions,
  type ResolvedNormalizerOptions,
  type RewardNormalizerState,
} from './normalizer.js';
export { bradleyTerryLoss, bradleyTerryLosses, pairMetrics, type PairMetrics } from './bradley-terry.js';
export {
  labelPairs,
  type PreferencePair,
  type LabelPairsOptions,
  type LabelPairsResult,
} from './label-pairs.js';
export {
  readPreferenceJsonl,
  type PreferenceExample,
  type PreferenceDataset,
  type ReadPreferenceOptions,
} from './dataset.js';
export { tokenizePreferencePairs, type TokenizedPair, type TokenizePairsResult } from './tokenize-pairs.js';
export {
  packSequences,
  sequenceTensors,
  disposeSequenceTensors,
  selectLast,
  type PaddingSide,
  type SequenceBatch,
  type SequenceTensors,
  type PackOptions,
} from './sequence-batch.js';
export {
  RewardModel,
  HEAD_PREFIX,
  type RewardModelOptions,
  type CreateRewardModelOptions,
  type ScoreSequencesOptions,
} from './reward-model.js';
export {
  pairBatch,
  disposePairBatch,
  rewardModelLoss,
  type PairBatch,
  type RewardModelLossOptions,
  type RewardModelLossResult,
} from './rm-loss.js';
export { evaluateRewardModel, type EvaluateRewardModelOptions, type RewardModelEval } from './evaluate.js';
export {
  saveRewardCheckpoint,
  loadRewardCheckpoint,
  REWARD_CHECKPOINT_KIND,
  type RewardTrainerState,
  type RewardRunFingerprint,
} from './checkpoint.js';
export {
  trainRewardModel,
  runRewardModelTraining,
  type RewardTrainOptions,
  type RewardTrainMetrics,
  type RewardTrainResult,
  type TrainRewardModelOptions,
  type TrainRewardModelResult,
} from './train.js';
