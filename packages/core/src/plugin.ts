/**
 * The optimizer plugin interface. An optimizer (PPO-max, DPO, P3O-V1, P3O-V2, or a third party's) is a
 * package whose default export is an {@link AlgorithmPlugin}:
 *
 * ```ts
 * export default definePlugin({
 *   name: 'my-algo',
 *   description: 'one line',
 *   configSchema: configSchema({
 *     lr: numberField({ default: 1e-5, min: 0, exclusiveMin: true, description: 'AdamW lr' }),
 *   }),
 *   requirements: () => ({ responsesPerPrompt: 2, referenceLogprobs: true, valueHead: false }),
 *   create: (context, config) => new MyAlgo(context, config),
 * });
 * ```
 *
 * The {@link Trainer} samples prompts, generates `responsesPerPrompt` responses per prompt, scores them, adds
 * reference log-probs if asked, and hands the scored rollout to `instance.update(batch, context)`, which runs
 * the algorithm's whole optimisation phase (epochs × minibatches) and returns its metrics.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, ScalarHead, TokenizedExample } from '@relign/lm';
import type { RolloutMinibatch } from '@relign/rollout';
import { resolveConfig, type ConfigSchema } from './config.js';

/** What the trainer must collect for the plugin. */
export interface RolloutRequirements {
  /** Responses sampled per prompt, kept adjacent (2 for P3O and online DPO, 1 for PPO). */
  responsesPerPrompt: number;
  /** Whether the batch must carry `refLogprobs` from the frozen reference (the SFT model). */
  referenceLogprobs: boolean;
  /** Whether the algorithm trains a value head (it owns the critic; the trainer only reports it). */
  valueHead: boolean;
  /**
   * Objects (not settings) the algorithm needs with this config, e.g. `{ rewardModel: true }`: `true` or a
   * string (why it is needed, and the config alternative; shown in the error) means required: the Trainer
   * passes its `resources` option as `context.resources`, and `createInstance` refuses to create the instance
   * without a required one. `false` or absent: not needed.
   */
  resources?: ResourceRequirements;
  /**
   * The algorithm's default KL coefficient β (its paper's), used by the Trainer when its `kl` option is not
   * given (the Trainer's own default is 0.05, P3O's β, docs/algorithms.md §1.9). β itself always comes from the Trainer
   * (`UpdateContext.klCoef`), so one option sets it for every optimizer.
   */
  klCoef?: number;
}

/** A reward model as a resource: a `RewardModel` of @relign/reward-model fits (backbone + scalar head). */
export interface RewardModelResource {
  backbone: CausalLM;
  head: ScalarHead;
}

/**
 * Objects a plugin can ask the Trainer for (declared in `requirements().resources`, given to the Trainer as
 * its `resources` option, received in `context.resources`). Plugins copy what they keep; the caller owns them.
 */
export interface PluginResources {
  /** A trained reward model (e.g. PPO-max copies its critic from it, docs/algorithms.md §2.8). */
  rewardModel?: RewardModelResource;
  /** Tokenized SFT / pretraining examples (`tokenizePromptCompletion` of @relign/lm), e.g. for PPO-ptx. */
  sftExamples?: readonly TokenizedExample[];
}

/** Which {@link PluginResources} a plugin needs: `true` or a reason string = required. */
export type ResourceRequirements = { [K in keyof PluginResources]?: boolean | string };

/** The resource names, for validation and messages. */
export const RESOURCE_NAMES = [
  'rewardModel',
  'sftExamples',
] as const satisfies readonly (keyof PluginResources)[];

/** What an instance is created with. */
export interface PluginContext {
  /** The policy being trained; the plugin updates its trainable variables. */
  policy: CausalLM;
  /** The frozen reference (present when `referenceLogprobs`); never updated. */
  reference?: CausalLM;
  /** Seed of the plugin's own randomness (minibatch shuffles, head initialisation). */
  seed: number | string;
  /**
   * Objects given to the Trainer (its `resources` option); those required by `requirements().resources` are
   * checked present by `createInstance`.
   */
  resources?: PluginResources;
}

/** Per-update information from the trainer. */
export interface UpdateContext {
  /** The KL coefficient β from the trainer's KL controller (docs/algorithms.md §4.7; fixed for P3O, docs/algorithms.md §1.2). */
  klCoef: number;
  /**
   * Version of the policy before this update (the trainer counts updates). Rows of the batch with
   * `policyVersions[b]` equal to it were collected in this iteration; the others are older groups the replay
   * buffer hands again, which running statistics must not count twice (see `newRows`).
   */
  policyVersion: number;
}

/** Metrics with stable names (`policy/clipfrac`, `loss/policy`, `objective/kl`, ...). */
export type Metrics = Record<string, number>;

/** Everything an instance needs to resume: JSON-able settings and counters, and named tensors. */
export interface PluginState {
  json: Record<string, unknown>;
  /** Optimizer moments, critic weights, ... The caller owns them once returned, and disposes them. */
  tensors: Map<string, tf.Tensor>;
}

export interface AlgorithmInstance {
  /**
   * One optimisation phase on a scored rollout (all its epochs and minibatches). Must not write non-finite
   * weights: a non-finite loss or gradient skips that step and is counted in `train/skipped_steps`.
   */
  update(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics>;
  /**
   * The loss and its statistics at the current parameters, without changing them. On a fresh rollout
   * (parameters = the sampling policy) importance ratios must be 1: the conformance suite checks
   * `policy/ratio_mean`, `policy/ratio_min` and `policy/ratio_max`.
   */
  evaluate(batch: RolloutMinibatch, context: UpdateContext): Promise<Metrics>;
  /** A copy of the instance's state (tensors owned by the caller). */
  state(): PluginState;
  /** Restores {@link state} (copies what it keeps; the caller still owns `state.tensors`). */
  load(state: PluginState): void;
  /** Frees the instance's tensors (not the policy or reference). */
  dispose(): void;
}

export interface AlgorithmPlugin<C = Record<string, unknown>> {
  /** Registry name, e.g. `p3o-v2`. */
  name: string;
  /** One line for `--help` and reports. */
  description: string;
  /** Every config key with its default (from the paper) and range. Unknown keys are rejected. */
  configSchema: ConfigSchema<C>;
  /** What the trainer must collect, given a resolved config. */
  requirements(config: C): RolloutRequirements;
  /** Creates an instance; `config` is validated with {@link resolvePluginConfig} first. */
  create(context: PluginContext, config: C): AlgorithmInstance;
}

/**
 * Any plugin, whatever its config type: what the registry stores and what name resolution returns. `any`
 * (not `unknown`) because `C` appears both in the schema's output and in `create`'s parameter, so no
 * `AlgorithmPlugin<X>` is assignable to one fixed instantiation in both directions; every config reaches
 * `create` through {@link createInstance}, which validates it against the plugin's own schema first.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyAlgorithmPlugin = AlgorithmPlugin<any>;

/** The config type of a plugin (`Partial<ConfigOf<typeof p3oV2Plugin>>` types a Trainer's `pluginConfig`). */
export type ConfigOf<P> = P extends AlgorithmPlugin<infer C> ? C : never;

/** Declares a plugin with its config type inferred from the schema; checks its shape. */
export function definePlugin<C>(plugin: AlgorithmPlugin<C>): AlgorithmPlugin<C> {
  const problem = isAlgorithmPlugin(plugin);
  if (problem !== true) throw new Error(`definePlugin: ${problem}.`);
  return plugin;
}

/** Validates a user config against the plugin's schema (unknown keys, types, ranges) and fills defaults. */
export function resolvePluginConfig<C>(plugin: AlgorithmPlugin<C>, config: unknown): C {
  return resolveConfig(plugin.configSchema, config, `${plugin.name} config`);
}

/** Creates an instance from a raw (user) config: validation, then `plugin.create`. */
export function createInstance<C>(
  plugin: AlgorithmPlugin<C>,
  context: PluginContext,
  config?: unknown,
): { instance: AlgorithmInstance; config: C; requirements: RolloutRequirements } {
  const resolved = resolvePluginConfig(plugin, config);
  const requirements = plugin.requirements(resolved);
  checkRequirements(plugin.name, requirements);
  if (requirements.referenceLogprobs && !context.reference) {
    throw new Error(`${plugin.name}: this algorithm needs a frozen reference model (context.reference).`);
  }
  for (const [key, why] of Object.entries(requirements.resources ?? {})) {
    if (why && context.resources?.[key as keyof PluginResources] === undefined) {
      throw new Error(
        `${plugin.name}: this algorithm needs the resource '${key}'${typeof why === 'string' ? ` (${why})` : ''}. ` +
          `Pass it to the Trainer as resources: { ${key} } (plugin.create receives it in context.resources).`,
      );
    }
  }
  return { instance: plugin.create(context, resolved), config: resolved, requirements };
}

function checkRequirements(name: string, r: RolloutRequirements): void {
  if (!Number.isInteger(r?.responsesPerPrompt) || r.responsesPerPrompt < 1) {
    throw new Error(`${name}: requirements().responsesPerPrompt must be an integer >= 1.`);
  }
  if (r.klCoef !== undefined && !(Number.isFinite(r.klCoef) && r.klCoef >= 0)) {
    throw new Error(`${name}: requirements().klCoef must be a finite number >= 0, got ${String(r.klCoef)}.`);
  }
  if (r.resources !== undefined) {
    if (r.resources === null || typeof r.resources !== 'object') {
      throw new Error(`${name}: requirements().resources must be an object such as { rewardModel: true }.`);
    }
    for (const key of Object.keys(r.resources)) {
      if (!(RESOURCE_NAMES as readonly string[]).includes(key)) {
        throw new Error(
          `${name}: requirements().resources.${key} is not a resource; the resources are ${RESOURCE_NAMES.join(', ')}.`,
        );
      }
    }
  }
}

/**
 * The plugin in `value`: the plugin itself, or a module namespace whose `default` is one — what
 * `require('@relign/p3o-v2')` returns in CommonJS, and `import * as m` in ESM.
 */
export function unwrapPluginModule<P>(value: P | { default: P }): P {
  if (isAlgorithmPlugin(value) === true) return value as P;
  const inner = (value as { default?: unknown } | null | undefined)?.default;
  if (inner !== undefined && isAlgorithmPlugin(inner) === true) return inner as P;
  // Bundler interop can nest the namespace once more (`{ default: { default: plugin } }`).
  const nested = (inner as { default?: unknown } | null | undefined)?.default;
  if (nested !== undefined && isAlgorithmPlugin(nested) === true) return nested as P;
  // Not a plugin: returned as is, for the caller's isAlgorithmPlugin check to say why.
  return value as P;
}

/** `true`, or why `value` is not an {@link AlgorithmPlugin}. */
export function isAlgorithmPlugin(value: unknown): true | string {
  if (value === null || typeof value !== 'object') return 'it is not an object';
  const p = value as Partial<AlgorithmPlugin>;
  if (typeof p.name !== 'string' || !/^[a-z0-9@][a-z0-9@/._-]*$/i.test(p.name)) {
    return "'name' must be a non-empty string of letters, digits, '-', '_', '.', '/' or '@'";
  }
  if (typeof p.description !== 'string') return `'${p.name}': 'description' must be a string`;
  if (
    p.configSchema === null ||
    typeof p.configSchema !== 'object' ||
    p.configSchema.type !== 'strict_object' ||
    typeof p.configSchema.entries !== 'object'
  ) {
    return `'${p.name}': 'configSchema' must be a config schema (configSchema({...}) of @relign/core, or a valibot strictObject)`;
  }
  if (typeof p.requirements !== 'function') return `'${p.name}': 'requirements' must be a function`;
  if (typeof p.create !== 'function') return `'${p.name}': 'create' must be a function`;
  return true;
}
