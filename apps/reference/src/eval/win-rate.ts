/**
 * Win rates between two models answering the same prompts (docs/algorithms.md §1.11 [CHOICE]: one sample per prompt per
 * model, ties count ½).
 */

/**
 * The fraction of prompts on which `a` scores higher than `b`, ties counting ½:
 * `mean_i [a_i > b_i] + ½ [a_i = b_i]`.
 *
 * @param a `[N]` scores of model A's responses (prompt i at index i).
 * @param b `[N]` scores of model B's responses to the same prompts.
 * @returns a value in [0, 1]; `winRate(a, b) + winRate(b, a) = 1`.
 * @throws Error when the lengths differ, are 0, or a score is not finite.
 */
export function winRate(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new Error(
      `winRate: the two models have ${a.length} and ${b.length} scores; compare responses to the same prompts (one each).`,
    );
  }
  if (a.length === 0) throw new Error('winRate: no scores to compare.');
  let wins = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      throw new Error(`winRate: score ${i} is not finite (${String(x)} vs ${String(y)}).`);
    }
    wins += x > y ? 1 : x === y ? 0.5 : 0;
  }
  return wins / a.length;
}
