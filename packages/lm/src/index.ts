/**
 * @relign/lm — language models for relign: GPT-2-compatible byte-level BPE tokenizers, a causal LM (GPT-2,
 * Llama, Qwen2, Qwen3) with KV cache and scalar heads, SFT, and the recipe for the small default base model.
 */
export * from './tokenizer/index.js';
export * from './model/index.js';
export * from './lora/index.js';
// Hugging Face Hub downloads into the shared cache (Node only: not in ./browser.ts).
export * from './hub/index.js';
export { readPromptCompletionJsonl, type PromptCompletion } from './data/jsonl.js';
export {
  readJsonl,
  jsonTypeName,
  type JsonlText,
  type JsonlRecord,
  type ReadJsonlOptions,
} from './data/jsonl-reader.js';
export {
  tokenizePromptCompletion,
  type TextTokenizer,
  type TokenizedExample,
  type TokenizeOptions,
  type TokenizeResult,
} from './data/tokenize.js';
export { collate, type CollatedBatch, type CollateOptions } from './data/collate.js';
export {
  asChatTokenizer,
  renderChatPromptCompletion,
  renderChatPreference,
  tokenizeConversation,
  type ChatTokenizer,
  type TokenizedConversation,
} from './data/chat.js';
export {
  readSftJsonl,
  parseSftRow,
  tokenizeSftRows,
  type SftRow,
  type ChatPromptCompletion,
  type Conversation,
} from './data/sft-rows.js';
export {
  detokenizeBrown,
  brownParagraphs,
  loadBrownCorpus,
  type BrownParagraph,
  type LoadBrownOptions,
} from './data/brown.js';
export {
  loadReviewSentences,
  REVIEW_DATA_ATTRIBUTION,
  type ReviewSentence,
  type ReviewSource,
  type LoadReviewOptions,
} from './data/reviews.js';
export { sft, type SftDataset, type SftOptions, type SftResult } from './sft/sft.js';
export {
  trainCausalLM,
  type TrainLoopOptions,
  type TrainMetrics,
  type TrainResult,
} from './train/causal-lm.js';
export {
  runSupervisedLoop,
  type SupervisedTask,
  type StepInfo,
  type LoopResult,
  type LoopSummary,
  type LoopOptions,
} from './train/loop.js';
export { DataOrder, type DataPosition } from './train/data-order.js';
export {
  causalLmLoss,
  causalLmNllSum,
  batchToTensors,
  disposeBatchTensors,
  type BatchTensors,
} from './sft/loss.js';
export { evaluateLoss, type EvaluateOptions, type EvalResult } from './sft/evaluate.js';
export {
  saveTrainingCheckpoint,
  loadTrainingCheckpoint,
  restoreTrainingCheckpoint,
  parseLoopState,
  OPTIMIZER_FILE,
  type LoopState,
  type LoopFingerprint,
  type CheckpointModel,
  type RestoreOptions,
} from './train/checkpoint.js';
// The checkpoint-folder format is @relign/tensor's; re-exported for the callers of earlier versions.
export { latestCheckpoint, LATEST_FILE, TRAINER_STATE_FILE } from '@relign/tensor';
// Models and tokenizers from a URL, bytes or a File (browser-safe; also in ./browser.ts).
export * from './browser/load.js';
export {
  pretrain,
  DEFAULT_PRETRAIN_MODEL,
  DEFAULT_SAMPLE_PROMPTS,
  type PretrainOptions,
  type PretrainReport,
  type TrainTokenizer,
} from './pretrain/pretrain.js';
export {
  loadDefaultPretrainCorpus,
  type PretrainCorpus,
  type DefaultCorpusOptions,
} from './pretrain/corpus.js';
export { packDocuments, type PackOptions } from './pretrain/pack.js';
export { unigramBaseline, type UnigramResult } from './pretrain/unigram.js';
export { sampleTokens, sampleTopK, type SampleOptions } from './pretrain/sample.js';
