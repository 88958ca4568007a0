/**
 * The arithmetic task (`relign run --task arithmetic`, issue 17): prompts "a+b=" with `a, b` in
 * `[0, arithmetic.maxOperand]`, the answer carried as per-prompt data (`{ prompt: '12+7=', answer: '19' }`,
 * the records the Trainer hands to reward functions), and a checkable reward: 1 for the right answer, plus an
 * optional small format reward for a well-formed one (digits only). Held-out accuracy is the gold metric.
 *
 * Split (seeded): `data.evalPrompts` problems are held out for evaluation and never trained on; the rest are
 * the SFT data ("a+b=" → "c"), the labelling prompts and the RL prompts. Learning the held-out sums is then
 * generalisation, not recall.
 */
import { createRng } from '@relign/tensor';
import { rewardFunction, type RewardFunction } from '@relign/reward-model';
import type { RelignConfig } from '../config/schema.js';

/** A problem as the Trainer and the reward functions see it. */
export interface ArithmeticRecord {
  prompt: string;
  /** The right answer, as digits. */
  answer: string;
}

/** Every problem of the range, in order (a major, b minor). */
export function allProblems(maxOperand: number): ArithmeticRecord[] {
  const out: ArithmeticRecord[] = [];
  for (let a = 0; a <= maxOperand; a++) {
    for (let b = 0; b <= maxOperand; b++) out.push({ prompt: `${a}+${b}=`, answer: String(a + b) });
  }
  return out;
}

/**
 * Reads a response as an answer: `{ value, wellFormed }`. `value` is the integer the response starts with
 * (after spaces), undefined when it does not start with one (malformed); `wellFormed` when the response is
 * that integer alone (surrounding spaces allowed), as the SFT data writes it.
 */
export function parseAnswer(response: string): { value?: string; wellFormed: boolean } {
  const m = /^\s*(\d+)/.exec(response);
  if (!m) return { wellFormed: false };
  // Leading zeros are not the way the data writes numbers: "07" is not 7.
  const value = m[1]!;
  const canonical = String(Number(value)) === value;
  return {
    ...(canonical ? { value } : {}),
    wellFormed: canonical && /^\s*\d+\s*$/.test(response),
  };
}

function answerOf(record: unknown, fn: string, index: number): string {
  const answer = (record as { answer?: unknown } | undefined)?.answer;
  if (typeof answer !== 'string' || !/^\d+$/.test(answer)) {
    throw new Error(
      `${fn}: row ${index} has no answer (its prompt record must be { prompt, answer: digits }); ` +
        'pass the problems as records, e.g. { prompt: "12+7=", answer: "19" }.',
    );
  }
  return answer;
}

/** Whether a response answers its record correctly: well-formed and equal to the answer. */
export function isCorrect(response: string, answer: string): boolean {
  const p = parseAnswer(response);
  return p.wellFormed && p.value === answer;
}

/**
 * The training reward: 1 for a correct answer (well-formed, equal to `record.answer`), plus `formatReward`
 * for any well-formed answer (right or wrong). Name `'arithmetic'`.
 */
export function arithmeticReward(options: { formatReward?: number } = {}): RewardFunction<ArithmeticRecord> {
  const bonus = options.formatReward ?? 0;
  return rewardFunction<ArithmeticRecord>(
    (_prompt: string, response: string, info) => {
      const answer = answerOf(info.record, 'arithmetic reward', info.index);
      const p = parseAnswer(response);
      return (p.wellFormed && p.value === answer ? 1 : 0) + (p.wellFormed ? bonus : 0);
    },
    { name: 'arithmetic' },
  );
}

/** The gold metric: accuracy (1 when the response is exactly the right answer, else 0). Name `'gold:accuracy'`. */
export function accuracyLabeler(): RewardFunction<ArithmeticRecord> {
  return rewardFunction<ArithmeticRecord>(
    (_p: string, r: string, info) =>
      isCorrect(r, answerOf(info.record, 'gold:accuracy', info.index)) ? 1 : 0,
    { name: 'gold:accuracy' },
  );
}

/**
 * A lenient judge: 1 when the response starts with the right number, whatever follows ("19 apples").
 * Name `'judge:leading-number'`.
 */
export function leadingNumberJudge(): RewardFunction<ArithmeticRecord> {
  return rewardFunction<ArithmeticRecord>(
    (_p: string, r: string, info) =>
      parseAnswer(r).value === answerOf(info.record, 'judge:leading-number', info.index) ? 1 : 0,
    { name: 'judge:leading-number' },
  );
}

/** The problems of a config split into held-out (evaluation) and training problems. */
export interface ArithmeticSplit {
  train: ArithmeticRecord[];
  heldOut: ArithmeticRecord[];
}

export function splitProblems(cfg: RelignConfig): ArithmeticSplit {
  const all = allProblems(cfg.arithmetic.maxOperand);
  if (cfg.data.evalPrompts >= all.length) {
    throw new Error(
      `data.evalPrompts (${cfg.data.evalPrompts}) must be smaller than the ${all.length} problems of ` +
        `arithmetic.maxOperand ${cfg.arithmetic.maxOperand} (the rest are trained on); lower it or raise arithmetic.maxOperand.`,
    );
  }
  const perm = createRng(`arithmetic/split/${cfg.seed}`).permutation(all.length);
  return {
    heldOut: perm.slice(0, cfg.data.evalPrompts).map((i) => all[i]!),
    train: perm.slice(cfg.data.evalPrompts).map((i) => all[i]!),
  };
}

/** A wrong answer near the right one (for the reward model's check): answer ± 1..3, never negative. */
export function nearMiss(answer: string, rng: { uniform(): number }): string {
  const n = Number(answer);
  const d = 1 + Math.floor(rng.uniform() * 3);
  return String(n - d >= 0 && rng.uniform() < 0.5 ? n - d : n + d);
}
