/**
 * AdamW (Loshchilov & Hutter, decoupled weight decay) with global-norm clipping and a non-finite guard.
 *
 * tfjs ships Adam but not AdamW, and its optimizers keep their moments in anonymous variables that cannot be
 * checkpointed by parameter name. This one keys every moment by the parameter's name, so its state saves
 * to safetensors next to the model and a resumed run continues bit-for-bit.
 *
 * Update for parameter p with gradient g at step t (1-based), as in PyTorch's `torch.optim.AdamW`:
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − lr·wd·p − lr·(m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε)
 *
 * Training loops call {@link AdamW.guardedStep}: it also applies the update guard of `guard.ts` (a step whose
 * loss, gradient or resulting weights are not finite, whose update norm exceeds `maxUpdateNorm`, or that grows
 * a weight beyond `maxWeightAbs` is skipped, leaving parameters and moments untouched).
 *
 * On the wasm backend the update of every parameter (and the guard's look-ahead) is one kernel call
 * (`wasm/adamw-kernel.ts`) doing the same float32 operations in the same order, so the results are
 * bit-identical to the per-parameter tfjs ops used on every other backend; the gradient clip is then a
 * factor the kernel applies rather than a scaled copy of every gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { clipByGlobalNorm } from '../numerics/clip-grad-norm.js';
import {
  fusedAdamWAvailable,
  fusedAdamWPrepare,
  fusedAdamWWrite,
  fusedGroupElements,
  type AdamWEntry,
} from '../wasm/adamw-op.js';
import {
  checkBound,
  DEFAULT_MAX_UPDATE_NORM,
  DEFAULT_MAX_WEIGHT_ABS,
  type SkipReason,
  type UpdateGuardOptions,
} from './guard.js';

export * from './guard.js';

/** The constructor's guard bounds are the defaults of every {@link AdamW.guardedStep}. */
export interface AdamWOptions extends UpdateGuardOptions {
  /** Learning rate (may be overridden per step). Default 1e-3. */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay. Default 0.01 (PyTorch's AdamW default). */
  weightDecay?: number;
  /**
   * Which parameters decay. Default: tensors of rank ≥ 2 (matrices and embeddings), not biases or LayerNorm
   * gains — the nanoGPT / Hugging Face convention.
   */
  decay?: (name: string, variable: tf.Variable) => boolean;
}

export interface StepOptions {
  /** Learning rate for this step (e.g. from `warmupCosine`). Default: the constructor's `lr`. */
  lr?: number;
  /** Clip gradients to this global L2 norm before the update. Default: no clipping. */
  maxGradNorm?: number;
}

/** Options of the guarded {@link AdamW.guardedStep}: the guard bounds override the constructor's. */
export interface GuardedStepOptions extends StepOptions, UpdateGuardOptions {
  /** The step's loss, when known: a non-finite loss skips the step before any work. */
  loss?: number;
}

export interface StepResult {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** True when the gradients were not finite: no parameter or moment was touched. */
  skipped: boolean;
  /** Optimizer steps taken so far (skipped steps do not count). */
  step: number;
}

/** Result of a guarded step ({@link AdamW.guardedStep}, {@link PendingStep.commit}). */
export interface GuardedStepResult extends StepResult {
  /** Global L2 norm of the parameter change the step makes (or would have made). */
  updateNorm: number;
  /** Largest |w| over the updated parameters after the step (or had it been taken). */
  weightMax: number;
  /** Why the step was skipped (absent when it was taken). */
  reason?: SkipReason;
  /** A sentence saying why it was skipped, with the numbers and the bound (absent when taken). */
  message?: string;
}

/**
 * A checked but not yet applied update ({@link AdamW.prepareStep}). Holds the clipped gradients until
 * `commit()` or `discard()`; the caller must not dispose the gradients it passed before then.
 */
export interface PendingStep extends GuardedStepResult {
  /** Applies the update when it passed the guard (else only frees), then frees. Call once. */
  commit(): GuardedStepResult;
  /** Frees the pending update without applying it. */
  discard(): void;
}

/** Serializable optimizer state: moments by parameter name, plus the step count. */
export interface AdamWState {
  step: number;
  /** `m.<name>` and `v.<name>` for every parameter seen so far. Owned by the caller once returned. */
  tensors: Map<string, tf.Tensor>;
}

export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly maxUpdateNorm: number;
  readonly maxWeightAbs: number;
  private readonly decay: (name: string, variable: tf.Variable) => boolean;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private t = 0;

  constructor(options: AdamWOptions = {}) {
    this.lr = options.lr ?? 1e-3;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    this.decay = options.decay ?? ((_name, variable) => variable.rank >= 2);
    const check = (field: string, value: number, ok: boolean, hint: string) => {
      if (!Number.isFinite(value) || !ok) throw new Error(`AdamW: ${field} ${hint} (got ${value}).`);
    };
    check('lr', this.lr, this.lr >= 0, 'must be >= 0');
    check('beta1', this.beta1, this.beta1 >= 0 && this.beta1 < 1, 'must be in [0, 1)');
    check('beta2', this.beta2, this.beta2 >= 0 && this.beta2 < 1, 'must be in [0, 1)');
    check('eps', this.eps, this.eps > 0, 'must be > 0');
    check('weightDecay', this.weightDecay, this.weightDecay >= 0, 'must be >= 0');
    this.maxUpdateNorm = checkBound(
      options.maxUpdateNorm ?? DEFAULT_MAX_UPDATE_NORM,
      'maxUpdateNorm',
      'AdamW',
    );
    this.maxWeightAbs = checkBound(options.maxWeightAbs ?? DEFAULT_MAX_WEIGHT_ABS, 'maxWeightAbs', 'AdamW');
  }

  /** Optimizer steps taken. */
  get step(): number {
    return this.t;
  }

  /**
   * Applies one update. `grads` and `params` are keyed by the same parameter names; parameters without a
   * gradient are left alone. Gradients are not disposed (the caller owns them). A non-finite gradient norm
   * skips the whole update, so training never writes NaN weights; the caller reports `skipped`.
   *
   * Without the magnitude guard: training loops use {@link guardedStep}. Reads back one number, the gradient
   * norm, asynchronously (a synchronous read stalls a GPU backend and fails on WebGPU in Node).
   */
  async applyGradients(
    grads: Record<string, tf.Tensor>,
    params: Record<string, tf.Variable> | Map<string, tf.Variable>,
    options: StepOptions = {},
  ): Promise<StepResult> {
    const { byName, names, lr, maxNorm } = this.checkStep(grads, params, options);
    const { clipped, scale, norm, stats, free } = this.clip(grads, byName, names, maxNorm, lr, this.t + 1);
    stats?.dispose(); // the guard's numbers: unused here
    let gradNorm: number;
    try {
      gradNorm = (await norm.data())[0]!;
    } catch (e) {
      free();
      throw e;
    } finally {
      norm.dispose();
    }
    if (!Number.isFinite(gradNorm)) {
      free();
      return { gradNorm, skipped: true, step: this.t };
    }
    try {
      this.apply(byName, names, clipped, lr, scale);
    } finally {
      free();
    }
    return { gradNorm, skipped: false, step: this.t };
  }

  /**
   * One guarded update (see `guard.ts`): {@link prepareStep}, then commit when the update passed the guard.
   * A skipped step changes no parameter, moment or step count; count it (`train/skipped_steps`) and report
   * `message`. Gradients are not disposed.
   */
  async guardedStep(
    grads: Record<string, tf.Tensor>,
    params: Record<string, tf.Variable> | Map<string, tf.Variable>,
    options: GuardedStepOptions = {},
  ): Promise<GuardedStepResult> {
    return (await this.prepareStep(grads, params, options)).commit();
  }

  /**
   * Computes the update and checks it against the guard on the device, reading back only five numbers
   * (asynchronously); nothing is written until `commit()`. Lets a caller with two optimizers (policy and
   * critic) take both steps or neither. No other step of this optimizer may run before `commit()`.
   */
  async prepareStep(
    grads: Record<string, tf.Tensor>,
    params: Record<string, tf.Variable> | Map<string, tf.Variable>,
    options: GuardedStepOptions = {},
  ): Promise<PendingStep> {
    const { byName, names, lr, maxNorm } = this.checkStep(grads, params, options);
    const maxUpdateNorm = checkBound(
      options.maxUpdateNorm ?? this.maxUpdateNorm,
      'maxUpdateNorm',
      'AdamW.guardedStep',
    );
    const maxWeightAbs = checkBound(
      options.maxWeightAbs ?? this.maxWeightAbs,
      'maxWeightAbs',
      'AdamW.guardedStep',
    );
    const skip = (
      reason: SkipReason,
      why: string,
      r: Pick<GuardedStepResult, 'gradNorm' | 'updateNorm' | 'weightMax'>,
    ): PendingStep => {
      const message = `${why} (lr ${lr}): step skipped, parameters and optimizer state unchanged.`;
      const result: GuardedStepResult = { ...r, skipped: true, step: this.t, reason, message };
      return { ...result, commit: () => result, discard: () => {} };
    };
    if (options.loss !== undefined && !Number.isFinite(options.loss)) {
      return skip('non-finite-loss', `the loss is ${options.loss}`, {
        gradNorm: NaN,
        updateNorm: NaN,
        weightMax: NaN,
      });
    }
    const t = this.t + 1;
    const { clipped, scale, norm, stats, free } = this.clip(grads, byName, names, maxNorm, lr, t);
    let values: ArrayLike<number>;
    if (stats) {
      try {
        values = await fusedStats(stats, norm, names.length);
      } catch (e) {
        free();
        throw e;
      } finally {
        norm.dispose();
      }
    } else {
      values = await this.stats(byName, names, clipped, norm, lr, t, free);
    }
    const [gradNorm, updateNorm, weightMax, grownMax, finite] = Array.from(values) as number[];
    const numbers = { gradNorm: gradNorm!, updateNorm: updateNorm!, weightMax: weightMax! };
    let bad: [SkipReason, string] | undefined;
    if (!Number.isFinite(gradNorm)) bad = ['non-finite-gradient', `the gradient norm is ${gradNorm}`];
    else if (finite !== 1) bad = ['non-finite-weights', 'the update would write non-finite weights'];
    else if (!(updateNorm! <= maxUpdateNorm)) {
      bad = [
        'update-norm',
        `the update norm ${fmt(updateNorm!)} exceeds maxUpdateNorm ${fmt(maxUpdateNorm)}`,
      ];
    } else if (!(grownMax! <= maxWeightAbs)) {
      bad = [
        'weight-magnitude',
        `the update would grow a weight to ${fmt(grownMax!)} (maxWeightAbs ${fmt(maxWeightAbs)})`,
      ];
    }
    if (bad) {
      free();
      return skip(bad[0], bad[1], numbers);
    }
    let done = false;
    const stepAt = this.t;
    return {
      ...numbers,
      skipped: false,
      step: t,
      commit: () => {
        if (done) throw new Error('AdamW: this pending step was already committed or discarded.');
        done = true;
        try {
          if (this.t !== stepAt) {
            throw new Error('AdamW: another step ran between prepareStep() and commit(); prepare again.');
          }
          this.apply(byName, names, clipped, lr, scale);
        } finally {
          free();
        }
        return { ...numbers, skipped: false, step: this.t };
      },
      discard: () => {
        if (done) return;
        done = true;
        free();
      },
    };
  }

  /**
   * The guard's numbers for the update at step `t`, with per-parameter tfjs ops: [grad norm, ‖Δθ‖, max |θ'|,
   * largest |θ'| the step grows, 1 if every θ' is finite], on the device; one tidy per parameter keeps the
   * extra memory at one parameter's temporaries. Disposes `norm`; calls `free` when the read fails.
   */
  private async stats(
    byName: Map<string, tf.Variable>,
    names: string[],
    clipped: Record<string, tf.Tensor>,
    norm: tf.Scalar,
    lr: number,
    t: number,
    free: () => void,
  ): Promise<ArrayLike<number>> {
    const stats = tf.tidy(() => {
      if (names.length === 0) return tf.stack([norm, tf.scalar(0), tf.scalar(0), tf.scalar(0), tf.scalar(1)]);
      const perParam = names.map((name) =>
        tf.tidy(() => {
          const p = byName.get(name)!;
          const next = this.next(name, p, clipped[name]!, lr, t).p;
          const abs = tf.abs(next);
          const grown = tf.where(tf.greater(abs, tf.abs(p)), abs, tf.zerosLike(abs));
          return tf.stack([
            tf.sum(tf.square(tf.sub(next, p))),
            tf.max(abs),
            tf.max(grown),
            tf.cast(tf.all(tf.isFinite(next)), 'float32'),
          ]);
        }),
      );
      const [sq, mx, gr, fin] = tf.unstack(tf.stack(perParam), 1);
      return tf.stack([norm, tf.sqrt(tf.sum(sq!)), tf.max(mx!), tf.max(gr!), tf.min(fin!)]);
    });
    norm.dispose();
    try {
      return await stats.data();
    } catch (e) {
      free();
      throw e;
    } finally {
      stats.dispose();
    }
  }

  /**
   * The global gradient norm and, as `clipByGlobalNorm` does, scaled copies of the gradients (`clipped`); or,
   * where the fused kernel runs, from one call: the norm, the clip factor (`scale`) the update multiplies
   * the gradients themselves by (`clipped` = `grads`), and the guard's per-parameter `stats` of the update
   * at step `t`. `free` disposes what this made, except `norm` and `stats` (the caller's).
   */
  private clip(
    grads: Record<string, tf.Tensor>,
    byName: Map<string, tf.Variable>,
    names: string[],
    maxNorm: number,
    lr: number,
    t: number,
  ): {
    clipped: Record<string, tf.Tensor>;
    scale?: tf.Tensor;
    stats?: tf.Tensor;
    norm: tf.Scalar;
    free: () => void;
  } {
    const fused =
      names.length > 0 &&
      fusedAdamWAvailable([
        ...Object.values(grads),
        ...names.map((name) => byName.get(name)!),
        ...names.flatMap((name) => [this.m.get(name), this.v.get(name)].filter((x) => x !== undefined)),
      ]);
    if (!fused) {
      const { grads: clipped, norm } = clipByGlobalNorm(grads, maxNorm);
      return { clipped, norm, free: () => disposeIfNew(clipped, grads) };
    }
    // clipByGlobalNorm adds the squared norms in the gradients' own order; the kernel does the same.
    const index = new Map(names.map((name, i) => [name, i]));
    const order = Object.keys(grads).map((name) => index.get(name)!);
    const { stats, norm, scale } = tf.tidy(() => {
      const { entries, constants } = this.entries(byName, names, grads, lr, t);
      return fusedAdamWPrepare(entries, constants, maxNorm, order);
    });
    return { clipped: grads, scale, norm, stats, free: () => scale.dispose() };
  }

  /** The fused kernel's entries for the step at `t` (moments not created yet read as zeros). */
  private entries(
    byName: Map<string, tf.Variable>,
    names: string[],
    grads: Record<string, tf.Tensor>,
    lr: number,
    t: number,
  ) {
    const entries: AdamWEntry[] = names.map((name) => {
      const p = byName.get(name)!;
      return {
        p,
        g: grads[name]!,
        m: this.m.get(name) ?? tf.zerosLike(p),
        v: this.v.get(name) ?? tf.zerosLike(p),
        decay: this.weightDecay > 0 && this.decay(name, p) ? 1 - lr * this.weightDecay : 1,
      };
    });
    const constants = {
      beta1: this.beta1,
      beta2: this.beta2,
      bc1: 1 - this.beta1 ** t,
      bc2: 1 - this.beta2 ** t,
      eps: this.eps,
      lr,
    };
    return { entries, constants };
  }

  private checkStep(
    grads: Record<string, tf.Tensor>,
    params: Record<string, tf.Variable> | Map<string, tf.Variable>,
    options: StepOptions,
  ): { byName: Map<string, tf.Variable>; names: string[]; lr: number; maxNorm: number } {
    const byName = params instanceof Map ? params : new Map(Object.entries(params));
    const names = Object.keys(grads).sort();
    for (const name of names) {
      const p = byName.get(name);
      if (!p) throw new Error(`AdamW: gradient for '${name}' has no parameter of that name.`);
      if (!tf.util.arraysEqual(p.shape, grads[name]!.shape)) {
        throw new Error(
          `AdamW: gradient '${name}' has shape [${grads[name]!.shape}] but the parameter is [${p.shape}].`,
        );
      }
    }
    const lr = options.lr ?? this.lr;
    if (!Number.isFinite(lr) || lr < 0)
      throw new Error(`AdamW: lr must be a finite number >= 0 (got ${lr}).`);
    // No clipping = a bound no finite norm reaches; the norm is still needed for the non-finite guard.
    const maxNorm = options.maxGradNorm ?? Number.MAX_VALUE;
    if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) {
      throw new Error(`AdamW: maxGradNorm must be a finite number > 0 (got ${maxNorm}).`);
    }
    return { byName, names, lr, maxNorm };
  }

  /**
   * The new m, v and p of one parameter at step `t` (in the caller's tidy). A parameter without moments yet
   * starts from zeros, as the variables `apply` creates do, so a checked update equals the applied one.
   */
  private next(name: string, p: tf.Variable, g: tf.Tensor, lr: number, t: number) {
    const m = this.m.get(name) ?? tf.zerosLike(p);
    const v = this.v.get(name) ?? tf.zerosLike(p);
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    const mNew = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
    const vNew = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
    const update = tf.div(tf.div(mNew, bc1), tf.add(tf.sqrt(tf.div(vNew, bc2)), this.eps));
    const decayed = this.weightDecay > 0 && this.decay(name, p) ? tf.mul(p, 1 - lr * this.weightDecay) : p;
    return { m: mNew, v: vNew, p: tf.sub(decayed, tf.mul(update, lr)) };
  }

  /** Takes the step with already clipped, finite gradients. */
  private apply(
    byName: Map<string, tf.Variable>,
    names: string[],
    clipped: Record<string, tf.Tensor>,
    lr: number,
    scale?: tf.Tensor,
  ): void {
    this.t += 1;
    for (const name of names) {
      if (this.m.has(name) && this.v.has(name)) continue;
      const p = byName.get(name)!;
      // tf.variable keeps its initial value alive as a separate tensor: create it inside tidy.
      this.m.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false, `adamw/m/${name}/${nextId()}`)),
      );
      this.v.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false, `adamw/v/${name}/${nextId()}`)),
      );
    }
    if (scale) {
      this.applyFused(byName, names, clipped, lr, scale);
      return;
    }
    for (const name of names) {
      const p = byName.get(name)!;
      const g = clipped[name]!;
      const mv = this.m.get(name)!;
      const vv = this.v.get(name)!;
      tf.tidy(() => {
        const next = this.next(name, p, g, lr, this.t);
        mv.assign(next.m);
        vv.assign(next.v);
        p.assign(next.p);
      });
    }
  }

  /**
   * The fused update: one kernel call per group of parameters of at most `fusedGroupElements()` elements
   * (one call for models below that; the bound caps the new p, m, v alive at once before assignment).
   */
  private applyFused(
    byName: Map<string, tf.Variable>,
    names: string[],
    grads: Record<string, tf.Tensor>,
    lr: number,
    scale: tf.Tensor,
  ): void {
    const limit = fusedGroupElements();
    let start = 0;
    while (start < names.length) {
      let end = start + 1;
      let size = byName.get(names[start]!)!.size;
      while (end < names.length && size + byName.get(names[end]!)!.size <= limit) {
        size += byName.get(names[end++]!)!.size;
      }
      const group = names.slice(start, end);
      tf.tidy(() => {
        const { entries, constants } = this.entries(byName, group, grads, lr, this.t);
        const next = fusedAdamWWrite(entries, constants, scale);
        group.forEach((name, i) => {
          this.m.get(name)!.assign(next[i]!.m);
          this.v.get(name)!.assign(next[i]!.v);
          byName.get(name)!.assign(next[i]!.p);
        });
      });
      start = end;
    }
  }

  /** A copy of the state (new tensors the caller owns): `m.<name>`, `v.<name>`, and the step. */
  state(): AdamWState {
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, m] of this.m) tensors.set(`m.${name}`, m.clone());
    for (const [name, v] of this.v) tensors.set(`v.${name}`, v.clone());
    return { step: this.t, tensors };
  }

  /** Restores a state from {@link state} (tensors are copied; the caller keeps ownership). */
  load(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new Error(`AdamW.load: step must be an integer >= 0 (got ${state.step}).`);
    }
    const pending = new Map<string, { m?: tf.Tensor; v?: tf.Tensor }>();
    for (const [key, tensor] of state.tensors) {
      const match = /^([mv])\.(.+)$/.exec(key);
      if (!match)
        throw new Error(`AdamW.load: unexpected tensor '${key}' (expected 'm.<param>' or 'v.<param>').`);
      const entry = pending.get(match[2]!) ?? {};
      entry[match[1] as 'm' | 'v'] = tensor;
      pending.set(match[2]!, entry);
    }
    for (const [name, { m, v }] of pending) {
      if (!m || !v)
        throw new Error(`AdamW.load: parameter '${name}' has ${m ? 'm' : 'v'} but no ${m ? 'v' : 'm'}.`);
      if (!tf.util.arraysEqual(m.shape, v.shape)) {
        throw new Error(`AdamW.load: m and v of '${name}' differ in shape ([${m.shape}] vs [${v.shape}]).`);
      }
    }
    this.disposeMoments();
    for (const [name, { m, v }] of pending) {
      this.m.set(
        name,
        tf.tidy(() => tf.variable(m!.clone(), false, `adamw/m/${name}/${nextId()}`)),
      );
      this.v.set(
        name,
        tf.tidy(() => tf.variable(v!.clone(), false, `adamw/v/${name}/${nextId()}`)),
      );
    }
    this.t = state.step;
  }

  dispose(): void {
    this.disposeMoments();
  }

  private disposeMoments(): void {
    for (const t of this.m.values()) t.dispose();
    for (const t of this.v.values()) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** A bound or measured value, short: 1.00e+30, 12.5, 0.001. */
function fmt(x: number): string {
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3)
    ? x.toExponential(2)
    : String(+x.toPrecision(4));
}

let counter = 0;
/** Variable names are global in tfjs; two optimizers over the same model must not collide. */
function nextId(): number {
  return ++counter;
}

/**
 * The guard's numbers ({@link AdamW} `stats`) from the fused kernel's per-parameter `stats` [count, 4]
 * (Σ(p' − p)², max |p'|, max grown |p'|, 0 iff finite), reduced here; disposes `stats` (not `norm`).
 */
async function fusedStats(stats: tf.Tensor, norm: tf.Scalar, count: number): Promise<number[]> {
  let per: ArrayLike<number>;
  let gradNorm: number;
  try {
    const [a, b] = await Promise.all([stats.data(), norm.data()]);
    per = a;
    gradNorm = b[0]!;
  } finally {
    stats.dispose();
  }
  let sq = 0;
  let mx = 0;
  let gr = 0;
  let finite = 1;
  for (let i = 0; i < count; i++) {
    sq += per[4 * i]!;
    // Math.max keeps a NaN, as tf.max does.
    mx = Math.max(mx, per[4 * i + 1]!);
    gr = Math.max(gr, per[4 * i + 2]!);
    if (per[4 * i + 3] !== 0) finite = 0;
  }
  return [gradNorm, Math.sqrt(sq), mx, gr, finite];
}

function disposeIfNew(clipped: Record<string, tf.Tensor>, original: Record<string, tf.Tensor>): void {
  for (const [name, t] of Object.entries(clipped)) {
    if (t !== original[name]) t.dispose();
  }
}
