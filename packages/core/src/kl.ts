/**
 * KL to the reference: one measurement shared by the penalty, the controller and the logs, and the two
 * controllers of the KL coefficient β (docs/algorithms.md §4.7).
 */

/**
 * Per-sequence KL estimate from per-token log-probs (host arrays, row-major `[B, T]`, only the first
 * `lengths[b]` tokens of row b count): `Σ_t k(ℓ_θ(t), ℓ_ref(t))` with the k1 estimator by default
 * (`ℓ_θ − ℓ_ref`, unbiased on samples from π_θ; docs/algorithms.md §1.11 [CHOICE] for frontiers, §4.3) or k3
 * (`e^u − 1 − u`, `u = ℓ_ref − ℓ_θ`; unbiased, ≥ 0, lower variance).
 *
 * Used for P3O's sequence-level penalty, the adaptive controller's input (`objective/kl` = the batch mean of
 * these sums, as TRL logs it) and evaluation.
 */
export function sequenceKl(
  logprobs: ArrayLike<number>,
  refLogprobs: ArrayLike<number>,
  lengths: ArrayLike<number>,
  width: number,
  estimator: 'k1' | 'k3' = 'k1',
): Float64Array {
  if (logprobs.length !== refLogprobs.length) {
    throw new Error(
      `sequenceKl: logprobs (${logprobs.length}) and refLogprobs (${refLogprobs.length}) differ in size.`,
    );
  }
  const rows = lengths.length;
  if (rows * width !== logprobs.length) {
    throw new Error(
      `sequenceKl: expected ${rows} rows x ${width} tokens = ${rows * width} log-probs, got ${logprobs.length}.`,
    );
  }
  const out = new Float64Array(rows);
  for (let b = 0; b < rows; b++) {
    const n = lengths[b]!;
    if (!Number.isInteger(n) || n < 0 || n > width) {
      throw new Error(`sequenceKl: lengths[${b}] = ${n} is not an integer in [0, ${width}].`);
    }
    let sum = 0;
    for (let t = 0; t < n; t++) {
      const delta = logprobs[b * width + t]! - refLogprobs[b * width + t]!;
      sum += estimator === 'k1' ? delta : Math.expm1(-delta) + delta;
    }
    out[b] = sum;
  }
  return out;
}

/** A controller of the KL coefficient β. `update` is called once per rollout/update phase. */
export interface KlController {
  readonly kind: 'fixed' | 'adaptive';
  /** The current coefficient. */
  readonly value: number;
  /** Feeds the measured KL (batch mean of per-sequence sums) over `nSteps` samples. */
  update(currentKl: number, nSteps: number): void;
  toJSON(): KlControllerState;
}

export type KlControllerState =
  { kind: 'fixed'; value: number } | { kind: 'adaptive'; value: number; target: number; horizon: number };

export class FixedKlController implements KlController {
  readonly kind = 'fixed';
  constructor(readonly value: number) {
    if (!Number.isFinite(value) || value < 0) {
      throw new Error(`FixedKlController: the KL coefficient must be a finite number >= 0 (got ${value}).`);
    }
  }
  update(): void {}
  toJSON(): KlControllerState {
    return { kind: 'fixed', value: this.value };
  }
}

/**
 * Ziegler et al. (2019) adaptive controller, as in TRL and OpenRLHF (docs/algorithms.md §4.7):
 * `e = clip(KL / target − 1, −0.2, 0.2);  β ← β · (1 + e · nSteps / horizon)`.
 * Defaults (TRL v0.11): β0 = 0.2, target 6, horizon 10000.
 */
export class AdaptiveKlController implements KlController {
  readonly kind = 'adaptive';
  private beta: number;
  constructor(
    initial = 0.2,
    readonly target = 6,
    readonly horizon = 10000,
  ) {
    if (!Number.isFinite(initial) || initial < 0) {
      throw new Error(`AdaptiveKlController: initial coefficient must be >= 0 (got ${initial}).`);
    }
    if (!(target > 0)) throw new Error(`AdaptiveKlController: target must be > 0 (got ${target}).`);
    if (!(horizon > 0)) throw new Error(`AdaptiveKlController: horizon must be > 0 (got ${horizon}).`);
    this.beta = initial;
  }
  get value(): number {
    return this.beta;
  }
  update(currentKl: number, nSteps: number): void {
    if (!Number.isFinite(currentKl)) {
      throw new Error(
        `AdaptiveKlController.update: KL must be finite (got ${currentKl}); the update was not applied.`,
      );
    }
    const error = Math.min(Math.max(currentKl / this.target - 1, -0.2), 0.2);
    this.beta *= 1 + (error * nSteps) / this.horizon;
  }
  toJSON(): KlControllerState {
    return { kind: 'adaptive', value: this.beta, target: this.target, horizon: this.horizon };
  }
}

/** Restores a controller from {@link KlController.toJSON}. */
export function klControllerFromJSON(state: KlControllerState): KlController {
  if (state?.kind === 'fixed') return new FixedKlController(state.value);
  if (state?.kind === 'adaptive') return new AdaptiveKlController(state.value, state.target, state.horizon);
  throw new Error(`klControllerFromJSON: unknown controller state ${JSON.stringify(state)}.`);
}
