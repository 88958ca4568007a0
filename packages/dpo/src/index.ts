/**
 * @relign/dpo — Direct Preference Optimization for relign (docs/algorithms.md §3): the DPO-family loss (DPO, cDPO, rDPO,
 * IPO), offline training from a preference dataset against a frozen reference with cached reference
 * log-probs, and online DPO as an optimizer plugin (docs/algorithms.md §1.12), the default export.
 */
import { onlineDpoPlugin } from './online/plugin.js';

export default onlineDpoPlugin;
export { onlineDpoPlugin, onlineDpoConfigSchema, type OnlineDpoConfig } from './online/plugin.js';
export {
  onlineDpoLoss,
  PAIR_LABELS,
  type OnlineDpoLossOptions,
  type PairLabels,
} from './online/online-loss.js';
export { identicalPairs, selectPairs } from './online/pairs.js';
export {
  dpoLoss,
  resolveDpoLossOptions,
  DPO_LOSS_TYPES,
  IPO_NORMALIZATIONS,
  type DpoLossType,
  type IpoNormalization,
  type DpoLossInputs,
  type DpoLossOptions,
  type DpoLossResult,
  type ResolvedDpoLossOptions,
} from './loss.js';
export {
  trainDpo,
  type OfflineDpoOptions,
  type OfflineDpoResult,
  type OfflineDpoMetrics,
} from './offline/train.js';
export { evaluateDpo, type DpoEvalResult, type EvaluateDpoOptions } from './offline/evaluate.js';
export {
  ReferenceLogprobCache,
  computeReferenceLogprobs,
  referenceCacheKey,
  type ReferenceLogprobs,
  type ReferenceSource,
  type ReferenceCacheOptions,
  type ReferenceLookupOptions,
  type ReferenceLookup,
} from './offline/reference-cache.js';
export {
  loadPreferencePairs,
  dropIdenticalPairs,
  isIdenticalPair,
  type LoadPreferencePairsOptions,
  type PreferencePairs,
} from './offline/data.js';
export { modelFingerprint, pairsFingerprint } from './offline/fingerprint.js';
export { responseLogprobSums, sequenceLogprobSums, responseLengths } from './offline/sequence-logprobs.js';
