/**
 * The automatic labelers of the default task, as reward functions over text (issue 9): the gold labeler
 * (VADER compound), which also labels the preference pairs, and an independent judge (wink-sentiment or
 * AFINN-165). Optimising against one and judging with another shows reward hacking: the two agree on only
 * 84-94 % of review sentences (`notes/data-sources.md`), and VADER rewards CAPS and "!!!", for instance.
 */
import { rewardFunction, type RewardFunction } from '@relign/reward-model';
import vader from 'vader-sentiment';
import wink from 'wink-sentiment';
import Sentiment from 'sentiment';
import type { RelignConfig } from '../config/schema.js';
import { accuracyLabeler, arithmeticReward, leadingNumberJudge } from '../task/arithmetic.js';

/** What a labeler reads. */
export type LabelScope = 'full' | 'response';

export interface LabelerOptions {
  /**
   * `'full'` (default): the whole review, `prompt + response` (the prompt's first words carry sentiment
   * too: "I did not" + " like it"); `'response'`: the response alone. The prompt is the same for every
   * policy, so either ranks policies alike; 'full' is what a reader of the review would judge.
   */
  scope?: LabelScope;
}

export interface JudgeOptions extends LabelerOptions {
  /** `'wink'` (default): wink-sentiment's normalizedScore; `'afinn'`: AFINN-165's comparative score. */
  kind?: 'wink' | 'afinn';
}

function textOf(scope: LabelScope | undefined, fn: string): (prompt: string, response: string) => string {
  if (scope === undefined || scope === 'full') return (p, r) => p + r;
  if (scope === 'response') return (_p, r) => r;
  throw new Error(`${fn}: options.scope must be 'full' or 'response', got ${JSON.stringify(scope)}.`);
}

/**
 * The gold labeler: VADER's compound score of the review, in [-1, 1] (higher = more positive).
 * Name `'gold:vader'`.
 */
export function goldLabeler(options: LabelerOptions = {}): RewardFunction {
  const text = textOf(options.scope, 'goldLabeler');
  return rewardFunction(
    (p: string, r: string) => vader.SentimentIntensityAnalyzer.polarity_scores(text(p, r)).compound,
    {
      name: 'gold:vader',
    },
  );
}

/**
 * The judge: an independent lexicon labeler, scaled to about [-1, 1] like the gold score.
 * `'wink'`: wink-sentiment `normalizedScore / 5` (mean valence of the sentiment words, AFINN scale ±5);
 * `'afinn'`: AFINN-165 (`sentiment` package) `comparative / 5` (valence per token). Name `'judge:<kind>'`.
 */
export function judgeLabeler(options: JudgeOptions = {}): RewardFunction {
  const text = textOf(options.scope, 'judgeLabeler');
  const kind = options.kind ?? 'wink';
  if (kind === 'wink') {
    return rewardFunction((p: string, r: string) => wink(text(p, r)).normalizedScore / 5, {
      name: 'judge:wink',
    });
  }
  if (kind === 'afinn') {
    const afinn = new Sentiment();
    return rewardFunction((p: string, r: string) => afinn.analyze(text(p, r)).comparative / 5, {
      name: 'judge:afinn',
    });
  }
  throw new Error(`judgeLabeler: options.kind must be 'wink' or 'afinn', got ${JSON.stringify(kind)}.`);
}

/** The scorers of a task. */
export interface TaskLabelers {
  /** The gold metric (reviews: VADER; arithmetic: accuracy). */
  gold: RewardFunction;
  /** The independent judge (reviews: wink-sentiment; arithmetic: the leading number is right). */
  judge: RewardFunction;
  /** Labels the preference pairs (reviews: the gold labeler; arithmetic: the training reward). */
  labeler: RewardFunction;
  /**
   * The reward RL optimises when it is not the learned reward model: task arithmetic's checkable reward
   * (right answer 1, plus `arithmetic.formatReward` for a well-formed one). Undefined for the reviews.
   */
  checkable?: RewardFunction;
}

/** The labelers of `cfg.task`. The arithmetic ones read each prompt's record (`{ prompt, answer }`). */
export function taskLabelers(cfg: RelignConfig): TaskLabelers {
  if (cfg.task === 'arithmetic') {
    const reward = arithmeticReward({ formatReward: cfg.arithmetic.formatReward });
    return { gold: accuracyLabeler(), judge: leadingNumberJudge(), labeler: reward, checkable: reward };
  }
  const gold = goldLabeler();
  return { gold, judge: judgeLabeler(), labeler: gold };
}
