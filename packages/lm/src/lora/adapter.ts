/**
 * LoRA adapters (Hu et al. 2021, PEFT's implementation): each targeted linear module `y = x W + b` gains
 * `(alpha / r) * dropout(x) Aᵀ Bᵀ` with A [r, in] and B [out, r] trainable, W frozen. A starts
 * Kaiming-uniform (PEFT's `kaiming_uniform_(a=sqrt(5))`, i.e. U(-1/sqrt(in), 1/sqrt(in))) and B at zero, so an
 * adapted model starts equal to its base.
 *
 * The adapter is a {@link ProjectionHook}: the model adds `delta(name, x)` to each module's output, so the
 * base weights are never copied. Disabling it (see {@link LoraAdapter.withAdaptersDisabled}) gives the base
 * model back, which is how the reference of a LoRA run costs no memory (TRL with PEFT does the same).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, uniqueVariableScope, type Rng } from '../model/init.js';
import type { ProjectionContext, ProjectionHook } from '../model/projection-hook.js';
import type { LoraConfig } from './config.js';

/** One linear module an adapter is attached to. */
export interface LoraModuleSpec {
  /** HF module path without `.weight`, e.g. `h.0.attn.c_attn` or `model.layers.0.self_attn.q_proj`. */
  name: string;
  inFeatures: number;
  outFeatures: number;
  /** The base weight is stored [in, out] (HF Conv1D, GPT-2) rather than [out, in] (nn.Linear). */
  fanInFanOut: boolean;
}

interface LoraModule extends LoraModuleSpec {
  /** [r, in] */
  A: tf.Variable;
  /** [out, r] */
  B: tf.Variable;
}

/** The name of module `name`'s A or B in {@link LoraAdapter.variables} (PEFT's key without its prefix). */
export function loraVariableName(module: string, which: 'A' | 'B'): string {
  return `${module}.lora_${which}.weight`;
}

export class LoraAdapter implements ProjectionHook {
  readonly config: LoraConfig;
  /** `loraAlpha / r`, the factor of every update. */
  readonly scaling: number;
  private readonly modules = new Map<string, LoraModule>();
  private readonly dropoutRng: Rng;
  private disabledDepth = 0;
  private disposed = false;

  /**
   * Creates the adapters' variables (A seeded from `config.seed` in module order, B zeros). Usually made by
   * `attachLora`, which finds the modules of a model; this constructor works on any module list.
   */
  constructor(modules: readonly LoraModuleSpec[], config: LoraConfig) {
    if (modules.length === 0) {
      throw new Error(
        `LoRA: no linear module matches targetModules ${JSON.stringify(config.targetModules)}; ` +
          'name modules by their last path segment (e.g. "q_proj", "c_attn") or give a regex over the full path.',
      );
    }
    this.config = config;
    this.scaling = config.loraAlpha / config.r;
    const rng = createRng(config.seed);
    this.dropoutRng = rng.split();
    const scope = uniqueVariableScope('relign_lora', loraVariableName(modules[0]!.name, 'A'));
    try {
      for (const m of modules) {
        const bound = 1 / Math.sqrt(m.inFeatures);
        const a = new Float32Array(config.r * m.inFeatures);
        for (let i = 0; i < a.length; i++) a[i] = (2 * rng.uniform() - 1) * bound;
        // tidy: a variable shares its initial tensor's data, but the initial tensor itself must be freed.
        const A = tf.tidy(() =>
          tf.variable(
            tf.tensor2d(a, [config.r, m.inFeatures]),
            true,
            `${scope}/${loraVariableName(m.name, 'A')}`,
          ),
        );
        const B = tf.tidy(() =>
          tf.variable(tf.zeros([m.outFeatures, config.r]), true, `${scope}/${loraVariableName(m.name, 'B')}`),
        );
        this.modules.set(m.name, { ...m, A, B });
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** The adapted modules, in the order given. */
  moduleSpecs(): LoraModuleSpec[] {
    return [...this.modules.values()].map(({ name, inFeatures, outFeatures, fanInFanOut }) => ({
      name,
      inFeatures,
      outFeatures,
      fanInFanOut,
    }));
  }

  /** Every A and B by name (`<module>.lora_A.weight`): the trainable variables of a LoRA policy. */
  variables(): Map<string, tf.Variable> {
    this.assertLive('variables');
    const out = new Map<string, tf.Variable>();
    for (const m of this.modules.values()) {
      out.set(loraVariableName(m.name, 'A'), m.A);
      out.set(loraVariableName(m.name, 'B'), m.B);
    }
    return out;
  }

  /** The trainable A and B ({@link ProjectionHook.trainableVariables}: the model's optimizers train these). */
  trainableVariables(): Map<string, tf.Variable> {
    return this.disposed ? new Map() : new Map([...this.variables()].filter(([, v]) => v.trainable));
  }

  /** Number of scalar adapter parameters. */
  numParameters(): number {
    let n = 0;
    for (const m of this.modules.values()) n += m.A.size + m.B.size;
    return n;
  }

  /** False inside {@link withAdaptersDisabled}. */
  get enabled(): boolean {
    return this.disabledDepth === 0;
  }

  /**
   * Runs `fn` with every adapter off (the model computes its base outputs) and returns its result. The
   * forward pass is synchronous, so a disabled section never overlaps another forward; nesting is allowed.
   */
  withAdaptersDisabled<T>(fn: () => T): T {
    this.disabledDepth++;
    try {
      return fn();
    } finally {
      this.disabledDepth--;
    }
  }

  /** {@link ProjectionHook.delta}: `scaling * dropout(x) Aᵀ Bᵀ` for an adapted module, else null. */
  delta(name: string, x: tf.Tensor2D, ctx: ProjectionContext): tf.Tensor2D | null {
    if (this.disabledDepth > 0 || this.disposed) return null;
    const m = this.modules.get(name);
    if (m === undefined) return null;
    const p = this.config.loraDropout;
    const input = ctx.training && p > 0 ? tf.dropout(x, p, undefined, this.dropoutRng.int(2 ** 31)) : x;
    // [N, in] x [in, r] first: the rank-r intermediate keeps this O(N r (in + out)).
    const low = tf.matMul(input, m.A, false, true);
    return tf.mul(tf.matMul(low, m.B, false, true), this.scaling) as tf.Tensor2D;
  }

  /**
   * The weight update `scaling * B A` of module `name` in the base weight's own layout: [out, in] for
   * nn.Linear, [in, out] for Conv1D. The caller disposes it.
   */
  deltaWeight(name: string): tf.Tensor2D {
    this.assertLive('deltaWeight');
    const m = this.modules.get(name);
    if (m === undefined) throw new Error(`LoRA: module ${name} has no adapter.`);
    return tf.tidy(() => {
      const ba = m.fanInFanOut ? tf.matMul(m.A, m.B, true, true) : tf.matMul(m.B, m.A);
      return tf.mul(ba, this.scaling) as tf.Tensor2D;
    });
  }

  /**
   * The merged weights `W + scaling * B A` of every adapted module, keyed `<module>.weight` like the
   * model's parameters. `weight(name)` returns the base weight of a parameter name. The caller disposes them.
   */
  mergedWeights(weight: (paramName: string) => tf.Tensor | undefined): Map<string, tf.Tensor2D> {
    this.assertLive('mergedWeights');
    const out = new Map<string, tf.Tensor2D>();
    try {
      for (const m of this.modules.values()) {
        const param = `${m.name}.weight`;
        const w = weight(param);
        const expected = m.fanInFanOut ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures];
        if (w === undefined || w.rank !== 2 || w.shape[0] !== expected[0] || w.shape[1] !== expected[1]) {
          throw new Error(
            `LoRA: cannot merge into ${param}: expected a [${expected}] weight, got ${w ? `[${w.shape}]` : 'none'}.`,
          );
        }
        out.set(
          param,
          tf.tidy(() => {
            const d = this.deltaWeight(m.name);
            return tf.add(w, d) as tf.Tensor2D;
          }),
        );
      }
    } catch (err) {
      for (const t of out.values()) t.dispose();
      throw err;
    }
    return out;
  }

  /** Whether {@link dispose} was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Frees A and B. Idempotent. A disposed adapter adds nothing (its hook returns null). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.modules.values()) {
      m.A.dispose();
      m.B.dispose();
    }
  }

  private assertLive(what: string): void {
    if (this.disposed) throw new Error(`LoraAdapter.${what}: the adapter was disposed`);
  }
}
