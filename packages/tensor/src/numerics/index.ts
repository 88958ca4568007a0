/** Numerics for RLHF losses and statistics (docs/algorithms.md §0, §2.3, §4.3, §4.5, §6). */
export { logprobsFromLogits } from './logprobs.js';
export { entropyFromLogits } from './entropy.js';
export { maskedSum, maskedMean, maskedVar, type MaskedVarOptions } from './masked.js';
export { maskedWhiten, type MaskedWhitenOptions } from './whiten.js';
export { klEstimate, type KlEstimator } from './kl.js';
export {
  RunningMoments,
  RUNNING_MOMENTS_EPS,
  type RunningMomentsState,
  type BatchMoments,
  type MomentValues,
} from './running-moments.js';
export { clipByGlobalNorm, CLIP_NORM_EPS, type ClippedGrads } from './clip-grad-norm.js';
export { stopGradient } from './stop-gradient.js';
