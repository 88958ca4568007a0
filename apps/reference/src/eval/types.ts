/**
 * What an evaluation produces: the summary written to `<runDir>/eval/<name>.json` and the per-sample
 * records written to `<runDir>/samples/<name>.jsonl` (run-directory layout: apps/reference/README.md).
 */
import type { MeanStd } from './stats.js';

/** Win rates of one model against another on the same prompts, ties ½ (docs/algorithms.md §1.11). */
export interface WinRate {
  /** By the proxy reward model's score. */
  proxy: number;
  /** By the independent judge's score. */
  judge: number;
}

/** `<runDir>/eval/<name>.json`. */
export interface EvalResult {
  /** `'sft'`, `'<algo>'` (final policy) or `'<algo>-step-<N>'` (a checkpoint). */
  name: string;
  /** The optimizer (`'sft'` for the SFT model). */
  algo: string;
  /** Optimizer step of the evaluated policy (0 for SFT). */
  step: number;
  /** KL coefficient the policy was trained with, when known (frontier sweeps). */
  klCoef?: number;
  /** Training seed, when known (frontier sweeps). */
  seed?: number | string;
  /** Number of prompts (one response each). */
  n: number;
  /**
   * Gold labeler (VADER compound) of the responses. Task arithmetic: accuracy of the greedy (τ = 0) answers
   * (`greedyGold` of evaluatePolicy), the sampled answers' accuracy in {@link goldSampled}.
   */
  gold: MeanStd;
  /** Task arithmetic: accuracy of the sampled answers (one per prompt at the eval temperature). */
  goldSampled?: MeanStd;
  /** Independent judge of the responses. */
  judge: MeanStd;
  /** Proxy reward model (what RL optimised). */
  proxy: MeanStd;
  /** Sequence-level k1 KL to the SFT model on the policy's own samples (docs/algorithms.md §1.11). */
  klToSft: MeanStd;
  /** Mean response length in tokens, the stop token included (docs/algorithms.md §0). */
  length: { mean: number };
  /** Fraction of responses that ended with a stop token (the rest hit `maxNewTokens`). */
  eosRate: number;
  /** distinct-1 and distinct-2 over all responses (`distinctN`). */
  distinct1: number;
  distinct2: number;
  /** Mean within-response repeated-bigram fraction (`repetition`, n = 2). */
  repetition: number;
  winRates: {
    /** This model against the SFT model. */
    vsSft: WinRate;
    /** This model against each other evaluated model, by name. */
    headToHead?: Record<string, WinRate>;
  };
  /** Wall-clock seconds the evaluation took. */
  seconds: number;
}

/** One line of `<runDir>/samples/<name>.jsonl`: a prompt, the model's response and its scores. */
export interface SampleRecord {
  prompt: string;
  /** Decoded response without its stop token. */
  response: string;
  gold: number;
  judge: number;
  proxy: number;
  /** k1 KL to SFT of this sample: Σ_t (log π(y_t) − log π_SFT(y_t)). */
  kl: number;
  /** Response tokens, stop token included. */
  length: number;
  /** Whether the response ended with a stop token. */
  eos: boolean;
}

/** An evaluation: its summary and its samples (row i answers prompt i). */
export interface Evaluation {
  result: EvalResult;
  samples: SampleRecord[];
}
