/**
 * Presets: partial configs laid over the schema defaults. A config file and flags are laid over the preset.
 *
 * - `demo`: the default task on a CPU in minutes (the committed ~1M-parameter base model; the whole pipeline
 *   with the four optimizers in about 15 minutes or less on a 2-core machine with the wasm backend).
 * - `tiny`: a few steps of every stage on a freshly initialised micro model (CI seconds; checks the plumbing,
 *   not the learning).
 * - `gpu`: a real GPU job: GPT-2 small's shape (12 layers, 12 heads, width 768, 1024 positions, a 50257-token
 *   BPE vocabulary: 124M parameters) pretrained by the run on the Brown corpus and the reviews, then every stage
 *   at that size; or any GPT-2-family checkpoint the user brings as `model.base` (e.g. GPT-2 small itself).
 *   Meant for webgpu on a real adapter or `@tensorflow/tfjs-node-gpu` (README "Backends").
 */
import type { RelignConfig } from './schema.js';

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};
export type PartialConfig = DeepPartial<RelignConfig>;

export const PRESET_NAMES = ['demo', 'tiny', 'gpu'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

// Learning rates of the RL optimizers: the papers' values (5e-7 .. 8e-6) are for billion-parameter models and a
// thousand iterations; a 1M-parameter model trained for a few dozen iterations needs far larger steps. The four
// get the same policy learning rate and two passes over each rollout, so that the frontier compares the
// algorithms rather than their tuning.
const DEMO_ALGOS: RelignConfig['algos'] = {
  'ppo-max': { lr: 2e-4, criticLr: 2e-4, minibatchSize: 16, epochs: 2 },
  dpo: { lr: 2e-4, epochs: 2, pairsPerMinibatch: 8 },
  'p3o-v1': { lr: 2e-4, epochs: 2, pairsPerMinibatch: 8 },
  'p3o-v2': { lr: 2e-4, epochs: 2, pairsPerMinibatch: 8 },
};

export const PRESETS: Record<PresetName, PartialConfig> = {
  demo: {
    preset: 'demo',
    runDir: 'runs/demo',
    model: { base: 'default' },
    data: { evalPrompts: 128 },
    sft: { steps: 200, batchSize: 16, lr: 1e-3, warmupSteps: 10, evalEvery: 50, checkpointEvery: 50 },
    label: { prompts: 2600, maxNewTokens: 24, temperature: 1, btTemperature: 0.1, minGap: 0.05 },
    reward: { steps: 240, batchSize: 16, lr: 2e-4, warmupSteps: 10, checkpointEvery: 60 },
    train: {
      iterations: 60,
      promptsPerIteration: 16,
      maxNewTokens: 24,
      klCoef: 0.05,
      evalEvery: 10,
      checkpointEvery: 15,
    },
    algos: DEMO_ALGOS,
    eval: { maxNewTokens: 24 },
  },
  tiny: {
    preset: 'tiny',
    runDir: 'runs/tiny',
    model: { base: 'scratch', scratch: { vocabSize: 320, nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 48 } },
    pretrain: {
      steps: 3,
      batchSize: 2,
      lr: 3e-3,
      warmupSteps: 1,
      vocabSize: 300,
      nLayer: 1,
      nEmbd: 32,
      nHead: 2,
      nPositions: 48,
      evalEvery: 2,
    },
    data: { evalPrompts: 12 },
    sft: {
      steps: 12,
      batchSize: 8,
      lr: 3e-3,
      warmupSteps: 2,
      evalFraction: 0.05,
      evalEvery: 6,
      checkpointEvery: 6,
    },
    label: { prompts: 48, maxNewTokens: 8, btTemperature: 0.1, minGap: 0 },
    reward: { steps: 6, batchSize: 8, lr: 1e-3, warmupSteps: 1, evalFraction: 0.2, checkpointEvery: 3 },
    train: { iterations: 2, promptsPerIteration: 4, maxNewTokens: 8, evalEvery: 1, checkpointEvery: 1 },
    algos: {
      'ppo-max': { lr: 1e-3, criticLr: 1e-3, minibatchSize: 4, epochs: 1 },
      dpo: { lr: 1e-3, epochs: 1, pairsPerMinibatch: 4 },
      'p3o-v1': { lr: 1e-3, epochs: 1, pairsPerMinibatch: 4 },
      'p3o-v2': { lr: 1e-3, epochs: 1, pairsPerMinibatch: 4 },
    },
    eval: { maxNewTokens: 8 },
  },
  gpu: {
    preset: 'gpu',
    runDir: 'runs/gpu',
    model: { base: 'pretrain' },
    // GPT-2 small's shape. The corpus (~1.2M tokens at this vocabulary) reaches 50257 tokens only when a pair
    // seen once may merge, and fills ~1200 blocks of 1024: 1200 steps of 4 blocks are ~4 passes, about where
    // a 124M model starts to memorise it. Batch 4 × 1024: the logits ([4, 1024, 50257] float32) are 0.8 GB
    // per copy, and the whole step is estimated at ~20 GB with the attention maps; lr 6e-4 is GPT-2 small's.
    pretrain: {
      steps: 1200,
      batchSize: 4,
      lr: 6e-4,
      warmupSteps: 100,
      vocabSize: 50257,
      bpeMinFrequency: 1,
      nLayer: 12,
      nEmbd: 768,
      nHead: 12,
      nPositions: 1024,
      evalEvery: 200,
    },
    data: { evalPrompts: 128 },
    // ~2700 SFT sentences: 300 steps of 32 are ~3.6 passes (a 124M model overfits them beyond that).
    sft: { steps: 300, batchSize: 32, lr: 1e-4, warmupSteps: 30, evalEvery: 50, checkpointEvery: 100 },
    label: { prompts: 6000, maxNewTokens: 32, btTemperature: 0.1 },
    // At most one pair per training sentence: 250 steps of 32 are ~3 passes.
    reward: { steps: 250, batchSize: 32, lr: 5e-5, warmupSteps: 25, checkpointEvery: 50 },
    train: { iterations: 200, promptsPerIteration: 64, maxNewTokens: 32, evalEvery: 25, checkpointEvery: 25 },
    algos: {
      'ppo-max': { lr: 2e-5, criticLr: 5e-5, minibatchSize: 32, epochs: 2 },
      dpo: { lr: 1e-5, epochs: 4, pairsPerMinibatch: 16 },
      'p3o-v1': { lr: 1e-5, epochs: 4, pairsPerMinibatch: 16 },
      'p3o-v2': { lr: 1e-5, epochs: 4, pairsPerMinibatch: 16 },
    },
    eval: { maxNewTokens: 32 },
    frontier: { klCoefs: [0.02, 0.1, 0.2], seeds: [1] },
  },
};
