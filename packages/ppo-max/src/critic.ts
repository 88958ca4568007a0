/**
 * The critic of PPO-max: an LM backbone with a scalar value head applied at every response position
 * (docs/algorithms.md §2.8: "the critic is the RM applied at every position"), trained with its own optimizer and learning rate.
 *
 * Two initialisations:
 * - from a reward model (the paper's and MOSS's choice, docs/algorithms.md §2.8, §2.11): a copy of the RM's backbone and
 *   score head, so the critic starts out predicting the RM's score at every prefix;
 * - from the policy: a copy of the policy's weights and a new, seeded value head (TRL's default when no
 *   separate value model is given).
 * Either way the critic owns copies: training it never changes the reward model or the policy.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, ScalarHead } from '@relign/lm';
import { computeValues, type RolloutBatch } from '@relign/rollout';

/** What a critic can be initialised from: a `RewardModel` of @relign/reward-model fits, or any backbone + head. */
export interface CriticSource {
  backbone: CausalLM;
  head: ScalarHead;
}

/** State-tensor name prefixes of the critic's parameters. */
const BACKBONE = 'backbone.';
const HEAD = 'head.';

export class Critic {
  private constructor(
    readonly backbone: CausalLM,
    readonly head: ScalarHead,
  ) {}

  /** A copy of `source` (e.g. a trained reward model), trainable. */
  static fromSource(source: CriticSource): Critic {
    if (!(source?.backbone instanceof CausalLM) || !(source.head instanceof ScalarHead)) {
      throw new TypeError(
        'Critic: the critic source must be { backbone: CausalLM, head: ScalarHead } (a RewardModel fits).',
      );
    }
    if (source.backbone.isDisposed || source.head.isDisposed)
      throw new Error('Critic: the critic source was disposed.');
    if (source.head.hiddenSize !== source.backbone.dims.hiddenSize) {
      throw new Error(
        `Critic: the head's hidden size ${source.head.hiddenSize} differs from the backbone's n_embd ${source.backbone.dims.hiddenSize}.`,
      );
    }
    const backbone = source.backbone.clone({ trainable: true });
    try {
      return new Critic(backbone, source.head.clone({ trainable: true }));
    } catch (err) {
      backbone.dispose();
      throw err;
    }
  }

  /** A copy of the policy with a new value head (normal init with ScalarHead's default std, bias 0) from `seed`. */
  static fromPolicy(policy: CausalLM, seed: number | string): Critic {
    const backbone = policy.clone({ trainable: true });
    try {
      return new Critic(
        backbone,
        ScalarHead.create(backbone.dims.hiddenSize, { seed, prefix: 'v_head', bias: true }),
      );
    } catch (err) {
      backbone.dispose();
      throw err;
    }
  }

  /**
   * Values `[B, Tr]` at the positions predicting each response token (0 at padding), differentiable w.r.t.
   * the critic. Caller-owned.
   */
  values(batch: RolloutBatch): tf.Tensor2D {
    return computeValues(this.backbone, this.head, batch);
  }

  /** Every parameter: `backbone.<HF name>` and `head.<prefix>.weight` / `head.<prefix>.bias`. */
  variables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [k, v] of this.backbone.variables()) out.set(BACKBONE + k, v);
    for (const [k, v] of this.head.variables()) out.set(HEAD + k, v);
    return out;
  }

  /** The trainable parameters (all of them, named as in {@link variables}). */
  trainableVariables(): Map<string, tf.Variable> {
    return new Map([...this.variables()].filter(([, v]) => v.trainable));
  }

  /**
   * Copies `tensors` (named as in {@link variables}) into the parameters. Checks every name and shape before
   * changing anything; the caller keeps ownership of `tensors`.
   */
  assign(tensors: ReadonlyMap<string, tf.Tensor>, source: string): void {
    const vars = this.variables();
    for (const [name, v] of vars) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${source}: the critic parameter '${name}' is missing from the state.`);
      if (!tf.util.arraysEqual(t.shape, v.shape) || t.dtype !== 'float32') {
        throw new Error(
          `${source}: critic parameter '${name}' is ${t.dtype} [${t.shape}], expected float32 [${v.shape}].`,
        );
      }
    }
    for (const name of tensors.keys()) {
      if (!vars.has(name))
        throw new Error(`${source}: unknown critic parameter '${name}' (a critic of another architecture?).`);
    }
    for (const [name, v] of vars) {
      const t = tensors.get(name)!;
      tf.tidy(() => v.assign(tf.clone(t)));
    }
  }

  dispose(): void {
    this.backbone.dispose();
    this.head.dispose();
  }
}
