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
 */
import * as tf from '@tensorflow/tfjs-core';
import { clipByGlobalNorm } from '../numerics/clip-grad-norm.js';

export interface AdamWOptions {
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

export interface StepResult {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** True when the gradients were not finite: no parameter or moment was touched. */
  skipped: boolean;
  /** Optimizer steps taken so far (skipped steps do not count). */
  step: number;
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
  }

  /** Optimizer steps taken. */
  get step(): number {
    return this.t;
  }

  /**
   * Applies one update. `grads` and `params` are keyed by the same parameter names; parameters without a
   * gradient are left alone. Gradients are not disposed (the caller owns them). A non-finite gradient norm
   * skips the whole update, so training never writes NaN weights; the caller reports `skipped`.
   */
  applyGradients(
    grads: Record<string, tf.Tensor>,
    params: Record<string, tf.Variable> | Map<string, tf.Variable>,
    options: StepOptions = {},
  ): StepResult {
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

    const { grads: clipped, norm } = clipByGlobalNorm(grads, maxNorm);
    const gradNorm = norm.dataSync()[0]!;
    norm.dispose();
    if (!Number.isFinite(gradNorm)) {
      disposeIfNew(clipped, grads);
      return { gradNorm, skipped: true, step: this.t };
    }

    this.t += 1;
    const bc1 = 1 - this.beta1 ** this.t;
    const bc2 = 1 - this.beta2 ** this.t;
    for (const name of names) {
      const p = byName.get(name)!;
      const g = clipped[name]!;
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m || !v) {
        // tf.variable keeps its initial value alive as a separate tensor: create it inside tidy.
        m = tf.tidy(() => tf.variable(tf.zerosLike(p), false, `adamw/m/${name}/${nextId()}`));
        v = tf.tidy(() => tf.variable(tf.zerosLike(p), false, `adamw/v/${name}/${nextId()}`));
        this.m.set(name, m);
        this.v.set(name, v);
      }
      const mv = m;
      const vv = v;
      tf.tidy(() => {
        const mNew = tf.add(tf.mul(mv, this.beta1), tf.mul(g, 1 - this.beta1));
        const vNew = tf.add(tf.mul(vv, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const update = tf.div(tf.div(mNew, bc1), tf.add(tf.sqrt(tf.div(vNew, bc2)), this.eps));
        const decayed =
          this.weightDecay > 0 && this.decay(name, p) ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        mv.assign(mNew);
        vv.assign(vNew);
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
    disposeIfNew(clipped, grads);
    return { gradNorm, skipped: false, step: this.t };
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

let counter = 0;
/** Variable names are global in tfjs; two optimizers over the same model must not collide. */
function nextId(): number {
  return ++counter;
}

function disposeIfNew(clipped: Record<string, tf.Tensor>, original: Record<string, tf.Tensor>): void {
  for (const [name, t] of Object.entries(clipped)) {
    if (t !== original[name]) t.dispose();
  }
}
