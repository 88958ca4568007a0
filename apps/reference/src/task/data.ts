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
import { nearMiss, splitProblems, type ArithmeticRecord } from './arithmetic.js';

/** A sentence split into prompt and completion, with its human label. */
export interface SplitSentence extends PromptCompletion {
  label: 0 | 1;
  source: string;
}

export interface TaskData {
  /** `cfg.task`. */
  task: RelignConfig['task'];
  /**
   * Task arithmetic: the answer of every prompt (its per-prompt data; see {@link promptRecords}). For the
   * reviews the split sentences' labels play that part and this is absent.
   */
  answers?: ReadonlyMap<string, string>;
  /** Training sentences (task arithmetic: the training problems written out, label 1). */
  train: SplitSentence[];
  /**
   * Held-out sentences with their human labels, the reward model's check (task arithmetic: each held-out
   * problem with its right answer, label 1, and with a near miss, label 0).
   */
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

/**
 * The records of prompts, as the Trainer and the reward functions take them: `{ prompt, answer }` for task
 * arithmetic, `{ prompt }` otherwise.
 * @throws Error for an arithmetic prompt without an answer.
 */
export function promptRecords(
  data: TaskData,
  prompts: readonly string[],
): ArithmeticRecord[] | { prompt: string }[] {
  const answers = data.answers;
  if (!answers) return prompts.map((prompt) => ({ prompt }));
  return prompts.map((prompt) => {
    const answer = answers.get(prompt);
    if (answer === undefined)
      throw new Error(`task arithmetic: no answer for the prompt ${JSON.stringify(prompt)}.`);
    return { prompt, answer };
  });
}

/**
 * Task arithmetic's data: the held-out problems evaluate (`evalPrompts`); the training problems are the SFT
 * pairs ("a+b=" → "c"), the RL prompts and, cycled in seeded order up to `label.prompts`, the labelling
 * prompts.
 */
function arithmeticTaskData(cfg: RelignConfig): TaskData {
  const { train, heldOut } = splitProblems(cfg);
  const answers = new Map([...train, ...heldOut].map((r) => [r.prompt, r.answer]));
  const rng = createRng(`task/arithmetic/near-miss/${cfg.seed}`);
  const order = createRng(`task/arithmetic/label-prompts/${cfg.seed}`);
  const labelPrompts: string[] = [];
  while (labelPrompts.length < cfg.label.prompts) {
    for (const i of order.permutation(train.length)) {
      if (labelPrompts.length < cfg.label.prompts) labelPrompts.push(train[i]!.prompt);
    }
  }
  const written = (r: ArithmeticRecord, answer: string, label: 0 | 1): SplitSentence => ({
    prompt: r.prompt,
    completion: answer,
    label,
    source: 'arithmetic',
  });
  return {
    task: 'arithmetic',
    answers,
    train: train.map((r) => written(r, r.answer, 1)),
    heldOut: heldOut.flatMap((r) => [written(r, r.answer, 1), written(r, nearMiss(r.answer, rng), 0)]),
    sftPairs: train.map((r) => ({ prompt: r.prompt, completion: r.answer })),
    labelPrompts,
    rlPrompts: train.map((r) => r.prompt),
    evalPrompts: heldOut.map((r) => r.prompt),
  };
}

/** Loads and splits the task data for a config (deterministic in `seed`, `data.*` and the task's settings). */
export async function loadTaskData(cfg: RelignConfig): Promise<TaskData> {
  if (cfg.task === 'arithmetic') return arithmeticTaskData(cfg);
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
    task: 'reviews',
    train,
    heldOut,
    sftPairs: train.map(({ prompt, completion }) => ({ prompt, completion })),
    labelPrompts,
    rlPrompts,
    evalPrompts,
  };
}
