/**
 * The default task's data ("make the model write positive reviews", issue 9), all from the UCI review
 * sentences with human labels (`loadReviewSentences` of @relign/lm):
 *
 * - every sentence is split into a prompt (its first k words, k seeded in [promptWordsMin, promptWordsMax],
 *   leaving at least one word) and a completion (the rest);
 * - SFT pairs and the labelling prompts come from the training sentences;
 * - the task prompts are the prompts of the held-out sentences: a seeded `evalPrompts` of them evaluate
 *   every policy, the rest are the RL training prompts;
 * - the held-out sentences with their human labels check the reward model.
 */
import { createRng } from '@relign/tensor';
import { loadReviewSentences, type PromptCompletion, type ReviewSentence } from '@relign/lm';
import type { RelignConfig } from '../config/schema.js';

/** A sentence split into prompt and completion, with its human label. */
export interface SplitSentence extends PromptCompletion {
  label: 0 | 1;
  source: string;
}

export interface TaskData {
  train: SplitSentence[];
  heldOut: SplitSentence[];
  /** Prompt/completion pairs of the training sentences. */
  sftPairs: PromptCompletion[];
  /** Prompts for preference labelling (first words of training sentences, seeded order). */
  labelPrompts: string[];
  /** RL training prompts (held-out sentences not used for evaluation). */
  rlPrompts: string[];
  /** Evaluation prompts (held-out). */
  evalPrompts: string[];
}

/**
 * Splits a sentence after its first `k` words, `k` drawn in `[min, max]` and capped so that the completion
 * keeps at least one word. Returns undefined for a sentence of fewer than two words.
 * The completion starts with the space that separated it from the prompt (so prompt + completion is the text).
 */
export function splitSentence(text: string, k: number): PromptCompletion | undefined {
  const words = text.trim().split(/\s+/);
  if (words.length < 2) return undefined;
  const n = Math.max(1, Math.min(k, words.length - 1));
  return { prompt: words.slice(0, n).join(' '), completion: ' ' + words.slice(n).join(' ') };
}

function splitAll(sentences: readonly ReviewSentence[], cfg: RelignConfig, stream: string): SplitSentence[] {
  const { promptWordsMin: lo, promptWordsMax: hi } = cfg.data;
  const rng = createRng(`task/${stream}/${cfg.seed}`);
  const out: SplitSentence[] = [];
  for (const s of sentences) {
    // One draw per sentence, kept or not, so a sentence's split does not depend on its neighbours.
    const k = lo + Math.floor(rng.uniform() * (hi - lo + 1));
    const pc = splitSentence(s.text, k);
    if (pc) out.push({ ...pc, label: s.label, source: s.source });
  }
  return out;
}

/** Loads and splits the task data for a config (deterministic in `seed` and `data.*`). */
export async function loadTaskData(cfg: RelignConfig): Promise<TaskData> {
  const reviews = await loadReviewSentences({ seed: cfg.seed, heldOutFraction: cfg.data.heldOutFraction });
  const train = splitAll(reviews.train, cfg, 'train');
  const heldOut = splitAll(reviews.heldOut, cfg, 'held-out');
  if (cfg.data.evalPrompts >= heldOut.length) {
    throw new Error(
      `data.evalPrompts (${cfg.data.evalPrompts}) must be smaller than the ${heldOut.length} held-out sentences ` +
        '(the rest are the RL prompts); lower it or raise data.heldOutFraction.',
    );
  }
  const perm = createRng(`task/eval-split/${cfg.seed}`).permutation(heldOut.length);
  const isEval = new Set(perm.slice(0, cfg.data.evalPrompts));
  const evalPrompts = heldOut.filter((_, i) => isEval.has(i)).map((s) => s.prompt);
  const rlPrompts = heldOut.filter((_, i) => !isEval.has(i)).map((s) => s.prompt);
  const order = createRng(`task/label-prompts/${cfg.seed}`).permutation(train.length);
  const labelPrompts = order.slice(0, Math.min(cfg.label.prompts, train.length)).map((i) => train[i]!.prompt);
  return {
    train,
    heldOut,
    sftPairs: train.map(({ prompt, completion }) => ({ prompt, completion })),
    labelPrompts,
    rlPrompts,
    evalPrompts,
  };
}
