/**
 * Rewards of the page: automatic ones computed from the text, and a person's preference between two answers.
 */
import Sentiment from 'sentiment';

export type AutoRewardKind = 'sentiment' | 'longer' | 'shorter' | 'word';

const afinn = new Sentiment();

/** A per-answer score for the Trainer (`(prompt, response) => number`). */
export function autoReward(kind: AutoRewardKind, word = ''): (prompt: string, response: string) => number {
  switch (kind) {
    case 'sentiment':
      // AFINN-165 valence of the answer (sum over its words, −5..5 each), clipped to [−1, 1]: a short answer
      // with one positive word already scores, which a per-token average would dilute.
      return (_p, r) => Math.max(-1, Math.min(1, afinn.analyze(r).score / 5));
    case 'longer':
      return (_p, r) => Math.min(wordCount(r), 20) / 20;
    case 'shorter':
      return (_p, r) => 1 - Math.min(wordCount(r), 20) / 20;
    case 'word': {
      const w = word.trim().toLowerCase();
      if (!w) throw new Error('The "use a word" reward needs a word: type one in the box next to it.');
      const re = new RegExp(`\\b${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'gi');
      return (_p, r) => Math.min((r.match(re) ?? []).length, 3) / 3;
    }
  }
}

function wordCount(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

/** What the page asks a person: which of two answers to a prompt is better. */
export type AskPreference = (prompt: string, a: string, b: string) => Promise<0 | 1>;

/**
 * A preference as rewards: the chosen answer of a pair scores +0.5, the other −0.5. Pairwise optimizers use
 * only the difference r1 − r2 (P3O, docs/algorithms.md §1.10; online DPO chooses by its sign), so a click
 * is exactly the relative feedback they consume, with no reward model in between. GRPO/RLOO with groups of
 * two see the same ±1 advantage.
 */
export function preferenceRewards(
  ask: AskPreference,
): (prompts: readonly string[], responses: readonly string[]) => Promise<Float64Array> {
  return async (prompts, responses) => {
    if (responses.length % 2 !== 0) {
      throw new Error('Preferences need two answers per prompt; choose a pairwise optimizer.');
    }
    const out = new Float64Array(responses.length);
    for (let i = 0; i < responses.length; i += 2) {
      const better = await ask(prompts[i]!, responses[i]!, responses[i + 1]!);
      out[i] = better === 0 ? 0.5 : -0.5;
      out[i + 1] = -out[i]!;
    }
    return out;
  };
}
