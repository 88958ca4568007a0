/**
 * The data order of the supervised training loop: a seeded permutation per epoch, batches that never cross an
 * epoch boundary, and a position (epoch, index, RNG state) that a checkpoint restores exactly.
 */
import { rngFromState, type Rng, type RngState } from '@relign/tensor';

/** Where a {@link DataOrder} stands: the epoch, the index into its permutation, and the RNG state that drew it. */
export interface DataPosition {
  epoch: number;
  index: number;
  /** State of the data RNG just before it drew the current epoch's permutation. */
  epochRng: RngState;
}

/** Epoch-wise shuffled order over `n` examples with an exactly restorable position. */
export class DataOrder {
  private rng: Rng;
  epoch: number;
  index: number;
  epochRng: RngState;
  private perm: number[];

  constructor(
    private readonly n: number,
    private readonly batchSize: number,
    start: DataPosition,
  ) {
    this.epoch = start.epoch;
    this.index = start.index;
    this.epochRng = start.epochRng;
    this.rng = rngFromState(start.epochRng);
    this.perm = this.rng.permutation(n);
  }

  /** Indices of the next batch (never crossing an epoch boundary) and the epoch they belong to. */
  next(): { indices: number[]; epoch: number } {
    if (this.index >= this.n) {
      this.epoch += 1;
      this.index = 0;
      this.epochRng = this.rng.state();
      this.perm = this.rng.permutation(this.n);
    }
    const indices = this.perm.slice(this.index, this.index + this.batchSize);
    this.index += indices.length;
    return { indices, epoch: this.epoch };
  }

  /** Fraction of the epochs done: `epoch + index / n` (DPO's `train/epoch`). */
  progress(): number {
    return this.epoch + this.index / this.n;
  }
}
