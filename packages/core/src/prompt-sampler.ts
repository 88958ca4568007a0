/**
 * Prompt order for the training loop: epochs over the prompt set, each in its own seeded random order.
 *
 * The only state is the position, counted in samples (prompts handed out so far), so a checkpoint stores one
 * integer and a resumed run continues with exactly the prompts the uninterrupted run would have used. The
 * order of epoch e is `createRng("<seed>/prompts/<e>").permutation(N)`: a reshuffle per epoch that does not
 * depend on how many iterations were run before.
 */
import { createRng } from '@relign/tensor';

export class PromptSampler {
  private epoch = -1;
  private order: number[] = [];

  /**
   * @param size number of prompts N (>= 1).
   * @param seed run seed.
   * @param position samples already consumed (0 for a new run).
   */
  constructor(
    readonly size: number,
    private readonly seed: number | string,
    private position = 0,
  ) {
    if (!Number.isSafeInteger(size) || size < 1)
      throw new Error(`PromptSampler: the prompt set is empty (size ${size}).`);
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new Error(`PromptSampler: position must be an integer >= 0 (samples consumed), got ${position}.`);
    }
  }

  /** Samples consumed so far. */
  get samplesSeen(): number {
    return this.position;
  }

  /** The prompt indices of the next `count` samples (crossing epoch boundaries as needed); advances. */
  next(count: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const epoch = Math.floor(this.position / this.size);
      if (epoch !== this.epoch) {
        this.epoch = epoch;
        this.order = createRng(`${String(this.seed)}/prompts/${epoch}`).permutation(this.size);
      }
      out.push(this.order[this.position % this.size]!);
      this.position++;
    }
    return out;
  }
}
