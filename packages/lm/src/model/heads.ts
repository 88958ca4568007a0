/**
 * A scalar head over hidden states: the value head of PPO and the score of a reward model.
 *
 * `apply(hidden [B, T, D]) -> [B, T]` is `hidden @ w (+ b)`, at every position: a critic is the reward model
 * applied at every position (docs/algorithms.md §2.8); a reward is read at the last real position. The bias is optional:
 * PPO-max's reward model uses a bias-free linear head (docs/algorithms.md §2.2), TRL's value head has one.
 *
 * In files the weight is stored as a torch `nn.Linear(D, 1)` weight, shape [1, D] (as HF's `score.weight` of
 * GPT2ForSequenceClassification and TRL's `v_head.summary.weight`), the bias as `<prefix>.bias` [1].
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, fillNormal, uniqueVariableScope } from './init.js';
import { readSafetensors, writeSafetensors } from './io.js';
import type { CheckpointTensor } from './checkpoint.js';

export interface ScalarHeadOptions {
  /** Tensor-name prefix in files: `<prefix>.weight`, `<prefix>.bias`. Default `score`. */
  prefix?: string;
  /** Whether the head's variables are trainable. Default true. */
  trainable?: boolean;
}

export interface ScalarHeadCreateOptions extends ScalarHeadOptions {
  /** Whether the head has a bias (initialised to 0). Default true. */
  bias?: boolean;

  /** Seed of the weight init. Default 0. */
  seed?: number | string;
  /**
   * Std of the normal weight init. Default 1 / sqrt(3 D): the variance of torch's default `nn.Linear` init
   * (uniform +-1/sqrt(D)), which TRL's value head uses.
   */
  std?: number;
}

export class ScalarHead {
  /** [D, 1] weight. */
  readonly weight: tf.Variable;
  /** [1] bias, or undefined for a bias-free head. */
  readonly bias: tf.Variable | undefined;
  /** Tensor-name prefix used by {@link save}, {@link variables} and {@link tensors}. */
  readonly prefix: string;
  private disposed = false;

  /** Host values (a new head) or another head's tensors (a clone, copied on the device without a read). */
  private constructor(
    weight: Float32Array | tf.Tensor,
    bias: number | tf.Tensor | undefined,
    prefix: string,
    trainable: boolean,
  ) {
    const scope = uniqueVariableScope('relign_scalar_head', `${prefix}.weight`);
    this.prefix = prefix;
    this.weight = tf.tidy(() =>
      tf.variable(
        weight instanceof tf.Tensor ? weight.clone() : tf.tensor2d(weight, [weight.length, 1]),
        trainable,
        `${scope}/${prefix}.weight`,
      ),
    );
    this.bias =
      bias === undefined
        ? undefined
        : tf.tidy(() =>
            tf.variable(
              bias instanceof tf.Tensor ? bias.clone() : tf.tensor1d([bias]),
              trainable,
              `${scope}/${prefix}.bias`,
            ),
          );
  }

  /** A new head for hidden width D: weight normal(0, std) drawn from `seed`, bias 0 (unless `bias: false`). */
  static create(
    hiddenSize: number,
    { seed = 0, std, prefix = 'score', trainable = true, bias = true }: ScalarHeadCreateOptions = {},
  ): ScalarHead {
    if (!Number.isSafeInteger(hiddenSize) || hiddenSize < 1) {
      throw new Error(`ScalarHead.create: hiddenSize must be a positive integer, got ${hiddenSize}`);
    }
    const w = fillNormal(createRng(seed), new Float32Array(hiddenSize), std ?? 1 / Math.sqrt(3 * hiddenSize));
    return new ScalarHead(w, bias ? 0 : undefined, validPrefix(prefix), trainable);
  }

  /**
   * Builds a head from tensors read from a safetensors file (e.g. a reward-model file that also holds the
   * GPT-2 weights). Needs `<prefix>.weight` of shape [1, D] (or [D, 1] / [D]); `<prefix>.bias` [1] is optional
   * (without it the head is bias-free).
   * @throws Error naming the missing or mis-shaped tensor.
   */
  static fromTensors(
    tensors: ReadonlyMap<string, CheckpointTensor>,
    { prefix = 'score', trainable = true }: ScalarHeadOptions = {},
    source = 'tensors',
  ): ScalarHead {
    validPrefix(prefix);
    const wName = `${prefix}.weight`;
    const bName = `${prefix}.bias`;
    const w = tensors.get(wName);
    if (w === undefined) {
      const near = [...tensors.keys()].filter(
        (k) => k.endsWith('.weight') && !k.includes('.h.') && !k.startsWith('h.'),
      );
      throw new Error(
        `ScalarHead: ${source} has no tensor ${wName}` +
          (near.length ? ` (candidates: ${near.slice(0, 8).join(', ')}; pass the right { prefix })` : ''),
      );
    }
    const D = w.data.length;
    const okShape =
      w.dtype === 'float32' &&
      ((w.shape.length === 2 && (w.shape[0] === 1 || w.shape[1] === 1)) || w.shape.length === 1) &&
      D >= 1;
    if (!okShape) {
      throw new Error(
        `ScalarHead: ${source} tensor ${wName} has ${w.dtype} shape [${w.shape}], expected float32 [1, D]`,
      );
    }
    let bias: number | undefined;
    const b = tensors.get(bName);
    if (b !== undefined) {
      if (b.dtype !== 'float32' || b.data.length !== 1) {
        throw new Error(
          `ScalarHead: ${source} tensor ${bName} has ${b.dtype} shape [${b.shape}], expected float32 [1]`,
        );
      }
      bias = b.data[0]!;
    }
    // [1, D], [D, 1] and [D] all hold the D weights in the same order.
    return new ScalarHead(Float32Array.from(w.data as Float32Array), bias, prefix, trainable);
  }

  /** Loads a head from a safetensors file (other tensors in the file are ignored). */
  static async load(path: string, options: ScalarHeadOptions = {}): Promise<ScalarHead> {
    const file = await readSafetensors(path, { finite: true });
    return ScalarHead.fromTensors(file.tensors, options, path);
  }

  /** Hidden width D. */
  get hiddenSize(): number {
    return this.weight.shape[0]!;
  }

  /**
   * @param hidden [B, T, D] (e.g. `CausalLM.forward(...).hidden`). @returns [B, T] scalars.
   * Differentiable with respect to the head and, through `hidden`, the model.
   */
  apply(hidden: tf.Tensor3D): tf.Tensor2D {
    this.assertLive('apply');
    if (hidden.rank !== 3 || hidden.shape[2] !== this.hiddenSize) {
      throw new Error(`ScalarHead.apply: hidden must be [B, T, ${this.hiddenSize}], got [${hidden.shape}]`);
    }
    const [B, T, D] = hidden.shape;
    return tf.tidy(() => {
      const flat = tf.reshape(hidden, [B * T, D]);
      const y =
        this.bias === undefined
          ? tf.matMul(flat, this.weight as tf.Tensor2D)
          : tf.fused.matMul({ a: flat, b: this.weight as tf.Tensor2D, bias: this.bias });
      return tf.reshape(y, [B, T]);
    });
  }

  /** `<prefix>.weight` ([D, 1] variable) and, if any, `<prefix>.bias` ([1]). A new Map; the variables are the head's. */
  variables(): Map<string, tf.Variable> {
    this.assertLive('variables');
    const out = new Map([[`${this.prefix}.weight`, this.weight]]);
    if (this.bias !== undefined) out.set(`${this.prefix}.bias`, this.bias);
    return out;
  }

  /** The variables if trainable, else an empty Map. */
  trainableVariables(): Map<string, tf.Variable> {
    return new Map([...this.variables()].filter(([, v]) => v.trainable));
  }

  /** Host copies in file layout (`<prefix>.weight` [1, D], `<prefix>.bias` [1] if any), e.g. to merge into a model file. */
  async tensors(): Promise<Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>> {
    this.assertLive('tensors');
    const out = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>();
    out.set(`${this.prefix}.weight`, {
      dtype: 'float32',
      shape: [1, this.hiddenSize],
      data: (await this.weight.data()) as Float32Array,
    });
    if (this.bias !== undefined) {
      out.set(`${this.prefix}.bias`, {
        dtype: 'float32',
        shape: [1],
        data: (await this.bias.data()) as Float32Array,
      });
    }
    return out;
  }

  /** Writes the head atomically to a safetensors file at `path`. */
  async save(path: string): Promise<void> {
    await writeSafetensors(path, await this.tensors(), { format: 'pt' });
  }

  /** An independent copy (new variables with the current values, copied on the device). */
  clone({ trainable = true, prefix = this.prefix }: ScalarHeadOptions = {}): ScalarHead {
    this.assertLive('clone');
    return new ScalarHead(this.weight, this.bias, validPrefix(prefix), trainable);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Frees the variables. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.weight.dispose();
    this.bias?.dispose();
  }

  private assertLive(what: string): void {
    if (this.disposed) throw new Error(`ScalarHead.${what}: the head was disposed`);
  }
}

function validPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || prefix.length === 0) {
    throw new Error(
      `ScalarHead: prefix must be a non-empty string such as "score" or "v_head", got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}
