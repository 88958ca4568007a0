/**
 * The plugin conformance suite: properties every optimizer plugin (first- or third-party) must have for the
 * Trainer to drive it safely. Framework-agnostic: {@link conformanceChecks} returns named async checks that
 * throw on failure; {@link describeConformance} registers them with the caller's test framework (vitest,
 * jest, node:test adapters), so core has no test-framework dependency.
 *
 * The checks run on the active tfjs backend; run them once per backend (`TEST_BACKENDS`, `useBackend` of
 * `@relign/tensor/testing`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, type GPT2ConfigInput } from '@relign/lm';
import { collateGroups, ReplayBuffer, type PromptTokens, type RolloutMinibatch } from '@relign/rollout';
import { rewardFunction, type RewardFunction } from '@relign/reward-model';
import { assertNoLeaks } from '@relign/tensor/testing';
import { collectRollout, type GenerationOptions } from '../collect.js';
import { defaultsOf, describeField, type FieldInfo } from '../config.js';
import {
  createInstance,
  isAlgorithmPlugin,
  resolvePluginConfig,
  type AlgorithmInstance,
  type AlgorithmPlugin,
  type AnyAlgorithmPlugin,
  type Metrics,
  type RolloutRequirements,
} from '../plugin.js';
import { deserializePluginState, disposePluginState, serializePluginState } from '../state-io.js';

/** Names of the checks, for `skip`. */
export type ConformanceCheckName =
  'requirements' | 'invalid-config' | 'ratio-one' | 'no-leaks' | 'state-round-trip' | 'determinism';

export interface ConformanceCheck {
  name: ConformanceCheckName;
  /** One line for the test title. */
  title: string;
  /** Throws an Error describing the violation. */
  run: () => Promise<void>;
}

/** `C`: the plugin's config type (inferred from the plugin), so `config` is checked against it. */
export interface ConformanceOptions<C = Record<string, unknown>> {
  /** The plugin config the checks use (default `{}` = the plugin's defaults). */
  config?: Partial<C>;
  /** The tiny policy's config (default: V=32, 1 layer, width 16). */
  model?: GPT2ConfigInput;
  /** Seed of the policy's initialisation (default 7). */
  modelSeed?: number | string;
  /** Seed of the plugin and of sampling (default 1234). */
  seed?: number | string;
  /** Prompt token arrays (default: four prompts of 1–4 tokens, ids in [1, V)). */
  prompts?: readonly PromptTokens[];
  /** Reward function (default: the number of response tokens with an id in [1, 8)). */
  reward?: RewardFunction;
  /** Sampling (default: 6 new tokens, τ = 1, stop token 0). Keep top-k/top-p off (docs/algorithms.md §4.2). */
  generation?: Partial<GenerationOptions>;
  /** KL coefficient β passed to `update` (default 0.05, the P3O value of docs/algorithms.md §1.9). */
  klCoef?: number;
  /** Updates in the determinism check (each on a fresh rollout; default 3). */
  updates?: number;
  /** Updates counted by the leak check, after one warm-up update (default 4). */
  leakUpdates?: number;
  /** Updates before the state is saved in the round-trip check (default 2). */
  stateUpdates?: number;
  /** Tolerance of the importance-ratio check (default 1e-4). */
  ratioTolerance?: number;
  /**
   * Extra configs the plugin must reject, with text the error must contain (e.g. a cross-field rule:
   * `{config: {minLr: 1, lr: 0.1}, message: 'minLr'}`).
   */
  invalidConfigs?: ReadonlyArray<{ config: Record<string, unknown>; message: string | RegExp }>;
  /** Checks to leave out (say why in your test). */
  skip?: readonly ConformanceCheckName[];
}

/** The suite's defaults (exported so plugin tests can build on them). */
export const CONFORMANCE_DEFAULTS = {
  model: { vocab_size: 32, n_positions: 24, n_embd: 16, n_layer: 1, n_head: 2, initializer_range: 0.2 },
  modelSeed: 7,
  seed: 1234,
  prompts: [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]] as number[][],
  generation: { maxNewTokens: 6, temperature: 1, stopTokenIds: [0] },
  klCoef: 0.05,
  updates: 3,
  leakUpdates: 4,
  stateUpdates: 2,
  ratioTolerance: 1e-4,
} as const;

/** The default synthetic reward: how many response tokens have an id in [1, 8) (stop token 0 excluded). */
export function countLowIdsReward(): RewardFunction {
  return rewardFunction(
    (_prompt, response) => {
      let n = 0;
      for (let t = 0; t < response.length; t++) if (response[t]! >= 1 && response[t]! < 8) n++;
      return n;
    },
    { inputKind: 'tokens', name: 'count-low-ids' },
  );
}

interface Resolved {
  config: Record<string, unknown>;
  model: GPT2ConfigInput;
  modelSeed: number | string;
  seed: number | string;
  prompts: readonly PromptTokens[];
  reward: RewardFunction;
  generation: GenerationOptions;
  klCoef: number;
  updates: number;
  leakUpdates: number;
  stateUpdates: number;
  ratioTolerance: number;
}

/** Models and an instance of the plugin, with a way to make scored rollouts. */
class Fixture {
  readonly policy: CausalLM;
  readonly reference: CausalLM;
  readonly instance: AlgorithmInstance;
  readonly requirements: RolloutRequirements;

  constructor(
    readonly plugin: AnyAlgorithmPlugin,
    readonly o: Resolved,
    base: CausalLM,
  ) {
    this.reference = base.clone({ trainable: false });
    this.policy = base.clone();
    try {
      const made = createInstance(
        plugin,
        { policy: this.policy, reference: this.reference, seed: o.seed },
        o.config,
      );
      this.instance = made.instance;
      this.requirements = made.requirements;
    } catch (err) {
      this.policy.dispose();
      this.reference.dispose();
      throw err;
    }
  }

  /** A fresh rollout from the current policy, as the Trainer hands it to `update` (one collated minibatch). */
  async rollout(
    policyVersion: number,
    seed: number | string = `${String(this.o.seed)}/rollout/${policyVersion}`,
    generation: Partial<GenerationOptions> = {},
  ): Promise<RolloutMinibatch> {
    const r = await collectRollout({
      policy: this.policy,
      reference: this.requirements.referenceLogprobs ? this.reference : undefined,
      prompts: this.o.prompts,
      reward: this.o.reward,
      generation: { ...this.o.generation, ...generation },
      responsesPerPrompt: this.requirements.responsesPerPrompt,
      seed,
      policyVersion,
    });
    const buffer = new ReplayBuffer({
      capacity: this.o.prompts.length,
      responsesPerPrompt: this.requirements.responsesPerPrompt,
    });
    buffer.add(
      r.batch,
      r.refLogprobs ? { rewards: r.rewards, refLogprobs: r.refLogprobs } : { rewards: r.rewards },
    );
    return collateGroups(buffer.groups());
  }

  async update(batch: RolloutMinibatch, policyVersion: number, where: string): Promise<Metrics> {
    const metrics = await this.instance.update(batch, { klCoef: this.o.klCoef, policyVersion });
    checkMetrics(metrics, `${this.plugin.name}: update() ${where}`);
    return metrics;
  }

  dispose(): void {
    this.instance.dispose();
    this.policy.dispose();
    this.reference.dispose();
  }
}

function resolveOptions<C>(options: ConformanceOptions<C>): Resolved {
  const d = CONFORMANCE_DEFAULTS;
  return {
    config: { ...options.config } as Record<string, unknown>,
    model: options.model ?? { ...d.model },
    modelSeed: options.modelSeed ?? d.modelSeed,
    seed: options.seed ?? d.seed,
    prompts: options.prompts ?? d.prompts,
    reward: options.reward ?? countLowIdsReward(),
    generation: { ...d.generation, stopTokenIds: [...d.generation.stopTokenIds], ...options.generation },
    klCoef: options.klCoef ?? d.klCoef,
    updates: options.updates ?? d.updates,
    leakUpdates: options.leakUpdates ?? d.leakUpdates,
    stateUpdates: options.stateUpdates ?? d.stateUpdates,
    ratioTolerance: options.ratioTolerance ?? d.ratioTolerance,
  };
}

/** Throws unless `metrics` is an object of finite numbers. */
export function checkMetrics(metrics: unknown, where: string): asserts metrics is Metrics {
  if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) {
    throw new Error(
      `${where} must resolve to an object of named numbers (metrics), got ${JSON.stringify(metrics)}.`,
    );
  }
  for (const [k, v] of Object.entries(metrics)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`${where}: metric '${k}' = ${String(v)} is not a finite number.`);
    }
  }
}

/** Host copies of every policy parameter. */
function snapshot(model: CausalLM): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.variables()) out.set(name, v.dataSync() as Float32Array);
  return out;
}

/** Describes the first difference between two snapshots, or undefined when bit-identical. */
function firstDifference(
  a: Map<string, ArrayLike<number>>,
  b: Map<string, ArrayLike<number>>,
): string | undefined {
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y) return `'${name}' is missing from the second copy`;
    if (x.length !== y.length) return `'${name}' has ${x.length} vs ${y.length} elements`;
    let maxDiff = 0;
    let first = -1;
    for (let i = 0; i < x.length; i++) {
      if (!Object.is(x[i], y[i])) {
        if (first < 0) first = i;
        maxDiff = Math.max(maxDiff, Math.abs(x[i]! - y[i]!));
      }
    }
    if (first >= 0) return `'${name}'[${first}] = ${x[first]} vs ${y[first]} (max |diff| ${maxDiff})`;
  }
  for (const name of b.keys()) if (!a.has(name)) return `'${name}' is missing from the first copy`;
  return undefined;
}

async function stateTensorsHost(
  instance: AlgorithmInstance,
): Promise<{ json: string; tensors: Map<string, Float32Array | Int32Array> }> {
  const state = instance.state();
  try {
    const tensors = new Map<string, Float32Array | Int32Array>();
    for (const [k, t] of state.tensors) tensors.set(k, (await t.data()) as Float32Array | Int32Array);
    return { json: JSON.stringify(state.json), tensors };
  } finally {
    disposePluginState(state);
  }
}

/** A value outside a numeric field's range, or undefined when the field is unbounded. */
function outOfRange(field: FieldInfo): unknown {
  if (field.type === 'boolean') return 'yes';
  if (field.type === 'enum') return '__not_a_value__';
  if (field.min !== undefined) return field.exclusiveMin ? field.min : field.min - 1;
  if (field.max !== undefined) return field.exclusiveMax ? field.max : field.max + 1;
  return undefined;
}

function expectThrow(fn: () => unknown, includes: string | RegExp, what: string): void {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  if (error === undefined) throw new Error(`${what} was accepted; it must be rejected.`);
  const message = error instanceof Error ? error.message : String(error);
  const ok = typeof includes === 'string' ? message.includes(includes) : includes.test(message);
  if (!ok)
    throw new Error(`${what} was rejected, but the message does not name ${String(includes)}: "${message}"`);
}

/**
 * The conformance checks for `plugin`, as named async functions that throw on failure:
 *
 * 1. `requirements`: `requirements(defaults)` is well-formed (responsesPerPrompt an integer >= 1, booleans),
 *    an instance that needs a reference cannot be created without one, and rollouts built to the
 *    requirements carry reference log-probs exactly when asked.
 * 2. `invalid-config`: an unknown key is rejected naming the key; for every bounded/enum/boolean field an
 *    out-of-range or wrong-type value is rejected naming the field; defaults validate; plus
 *    `options.invalidConfigs`.
 * 3. `ratio-one`: on a fresh rollout (parameters = the sampling policy), `evaluate` reports
 *    `policy/ratio_mean`, `policy/ratio_min`, `policy/ratio_max` within `ratioTolerance` of 1 and does not
 *    change the parameters; also on rollouts sampled with top-k 3 and with top-p 0.5 (the Trainer hands
 *    full-vocabulary log-probs then too, so a plugin must not re-apply the truncation).
 * 4. `no-leaks`: `tf.memory().numTensors` is flat over `leakUpdates` updates (after one warm-up), over
 *    `evaluate`, and over `state()` + disposing it.
 * 5. `state-round-trip`: after `stateUpdates` updates, `state()` and the policy weights go through JSON and
 *    safetensors bytes into a fresh policy and instance; one more update on the same batch in both gives
 *    bit-identical policy parameters and state tensors.
 * 6. `determinism`: two runs from the same seeds give bit-identical parameters after `updates` updates (each
 *    on a fresh rollout), and the parameters did move.
 *
 * Every metric returned by `update`/`evaluate` must be a finite number.
 */
export function conformanceChecks<C>(
  plugin: AlgorithmPlugin<C>,
  options: ConformanceOptions<NoInfer<C>> = {},
): ConformanceCheck[] {
  const o = resolveOptions(options);
  const skip = new Set(options.skip ?? []);
  const name = plugin.name;
  const base = (): CausalLM => CausalLM.create(o.model, o.modelSeed);
  const withFixture = async (fn: (f: Fixture) => Promise<void>): Promise<void> => {
    const b = base();
    let f: Fixture;
    try {
      f = new Fixture(plugin, o, b);
    } finally {
      b.dispose();
    }
    try {
      await fn(f);
    } finally {
      f.dispose();
    }
  };

  const checks: ConformanceCheck[] = [
    {
      name: 'requirements',
      title: 'declares consistent rollout requirements',
      run: async () => {
        const shape = isAlgorithmPlugin(plugin);
        if (shape !== true) throw new Error(`${name}: not an AlgorithmPlugin: ${shape}.`);
        const config = resolvePluginConfig(plugin, o.config);
        const r = plugin.requirements(config);
        if (r === null || typeof r !== 'object')
          throw new Error(`${name}: requirements() must return an object.`);
        if (!Number.isInteger(r.responsesPerPrompt) || r.responsesPerPrompt < 1) {
          throw new Error(
            `${name}: requirements().responsesPerPrompt = ${String(r.responsesPerPrompt)}; must be an integer >= 1.`,
          );
        }
        for (const key of ['referenceLogprobs', 'valueHead'] as const) {
          if (typeof r[key] !== 'boolean')
            throw new Error(`${name}: requirements().${key} must be a boolean, got ${String(r[key])}.`);
        }
        if (r.referenceLogprobs) {
          const b = base();
          try {
            expectThrow(
              () => createInstance(plugin, { policy: b, seed: o.seed }, o.config).instance.dispose(),
              'reference',
              `${name}: creating an instance without the reference it requires`,
            );
          } finally {
            b.dispose();
          }
        }
        await withFixture(async (f) => {
          const batch = await f.rollout(0);
          if (batch.responsesPerPrompt !== r.responsesPerPrompt) {
            throw new Error(
              `${name}: rollout has ${batch.responsesPerPrompt} responses per prompt, requirements say ${r.responsesPerPrompt}.`,
            );
          }
          if (r.referenceLogprobs !== (batch.refLogprobs !== undefined)) {
            throw new Error(
              `${name}: reference log-probs presence does not follow requirements().referenceLogprobs.`,
            );
          }
          checkMetrics(await f.update(batch, 0, 'on the first rollout'), `${name}: update()`);
        });
      },
    },
    {
      name: 'invalid-config',
      title: 'rejects invalid configs with messages naming the field',
      run: async () => {
        const schema = Object.fromEntries(
          Object.entries(plugin.configSchema.entries).map(([key, entry]) => [key, describeField(entry)]),
        );
        // The defaults themselves must validate (a default outside its own range is a schema bug).
        resolvePluginConfig(plugin, defaultsOf(plugin.configSchema));
        resolvePluginConfig(plugin, undefined);
        const unknownKey = '__relign_not_a_key__';
        expectThrow(
          () => resolvePluginConfig(plugin, { ...o.config, [unknownKey]: 1 }),
          unknownKey,
          `${name}: unknown config key '${unknownKey}'`,
        );
        const b = base();
        const ref = b.clone({ trainable: false });
        try {
          expectThrow(
            () =>
              createInstance(
                plugin,
                { policy: b, reference: ref, seed: o.seed },
                { [unknownKey]: 1 },
              ).instance.dispose(),
            unknownKey,
            `${name}: createInstance with unknown key '${unknownKey}'`,
          );
          let bounded = 0;
          for (const [key, field] of Object.entries(schema)) {
            const bad = outOfRange(field);
            if (bad === undefined) continue;
            bounded++;
            expectThrow(
              () => resolvePluginConfig(plugin, { ...o.config, [key]: bad }),
              key,
              `${name}: config '${key}' = ${JSON.stringify(bad)} (outside its ${field.type} range)`,
            );
          }
          for (const [key, field] of Object.entries(schema)) {
            if (field.type !== 'number' && field.type !== 'integer') continue;
            expectThrow(
              () => resolvePluginConfig(plugin, { ...o.config, [key]: 'x' }),
              key,
              `${name}: config '${key}' = "x"`,
            );
          }
          if (Object.keys(schema).length > 0 && bounded === 0) {
            throw new Error(
              `${name}: no config field declares a range (min/max), enum values or a boolean type; declare ranges so bad values are rejected.`,
            );
          }
          for (const { config, message } of options.invalidConfigs ?? []) {
            expectThrow(
              () =>
                createInstance(
                  plugin,
                  { policy: b, reference: ref, seed: o.seed },
                  config,
                ).instance.dispose(),
              message,
              `${name}: config ${JSON.stringify(config)}`,
            );
          }
        } finally {
          b.dispose();
          ref.dispose();
        }
      },
    },
    {
      name: 'ratio-one',
      title: 'reports importance ratios of 1 on a fresh rollout',
      run: () =>
        withFixture(async (f) => {
          const before = snapshot(f.policy);
          // Truncated sampling too: the Trainer's rollouts carry full-vocabulary log-probs (docs/algorithms.md §4.2).
          for (const [label, generation] of [
            ['', {}],
            [' sampled with topK 3', { topK: 3 }],
            [' sampled with topP 0.5', { topP: 0.5 }],
          ] as const) {
            const batch = await f.rollout(0, undefined, generation);
            const m = await f.instance.evaluate(batch, { klCoef: o.klCoef, policyVersion: 0 });
            checkMetrics(m, `${name}: evaluate()`);
            for (const key of ['policy/ratio_mean', 'policy/ratio_min', 'policy/ratio_max']) {
              const v = m[key];
              if (v === undefined)
                throw new Error(
                  `${name}: evaluate() must report '${key}' (got ${Object.keys(m).join(', ')}).`,
                );
              if (Math.abs(v - 1) > o.ratioTolerance) {
                throw new Error(
                  `${name}: '${key}' = ${v} on a fresh rollout${label}; importance ratios must be 1 (±${o.ratioTolerance}) ` +
                    'before the first update. Compute log-probs at the sampling temperature without top-k/top-p ' +
                    '(docs/algorithms.md §4.2) and compare against batch.logprobs.',
                );
              }
            }
          }
          const diff = firstDifference(before, snapshot(f.policy));
          if (diff) throw new Error(`${name}: evaluate() changed the policy parameters: ${diff}.`);
        }),
    },
    {
      name: 'no-leaks',
      title: 'does not leak tensors over many updates',
      run: () =>
        withFixture(async (f) => {
          const batch = await f.rollout(0);
          let version = 0;
          await assertNoLeaks(async () => void (await f.update(batch, version++, 'in the leak check')), {
            warmup: 1,
            iterations: o.leakUpdates,
            label: `${name}: update()`,
          });
          await assertNoLeaks(
            async () =>
              void checkMetrics(
                await f.instance.evaluate(batch, { klCoef: o.klCoef, policyVersion: version }),
                `${name}: evaluate()`,
              ),
            {
              warmup: 1,
              iterations: 2,
              label: `${name}: evaluate()`,
            },
          );
          await assertNoLeaks(() => disposePluginState(f.instance.state()), {
            warmup: 1,
            iterations: 2,
            label: `${name}: state() (disposed by the caller)`,
          });
          // load() copies what it keeps: loading a state and disposing it leaves the count flat.
          await assertNoLeaks(
            () => {
              const s = f.instance.state();
              f.instance.load(s);
              disposePluginState(s);
            },
            { warmup: 1, iterations: 2, label: `${name}: load(state())` },
          );
        }),
    },
    {
      name: 'state-round-trip',
      title: 'state() and load() round-trip through a checkpoint',
      run: async () => {
        const b = base();
        let a: Fixture | undefined;
        let fresh: Fixture | undefined;
        try {
          a = new Fixture(plugin, o, b);
          for (let k = 0; k < o.stateUpdates; k++) await a.update(await a.rollout(k), k, `(update ${k + 1})`);
          const batch = await a.rollout(o.stateUpdates);
          // Save: the plugin state as bytes (JSON + safetensors, as the Trainer writes it) and the policy weights.
          const state = a.instance.state();
          let bytes;
          try {
            bytes = await serializePluginState(state, name);
          } finally {
            disposePluginState(state);
          }
          const weights = snapshot(a.policy);
          // Load into a fresh policy (initial weights of the run, then the saved ones) and a fresh instance.
          fresh = new Fixture(plugin, o, b);
          for (const [n, v] of fresh.policy.variables())
            tf.tidy(() => v.assign(tf.tensor(weights.get(n)!, v.shape, 'float32')));
          const restored = deserializePluginState(bytes, `${name} state`);
          try {
            fresh.instance.load(restored);
          } finally {
            disposePluginState(restored);
          }
          await a.update(batch, o.stateUpdates, 'after the state was saved');
          await fresh.update(batch, o.stateUpdates, 'after load()');
          const diff = firstDifference(snapshot(a.policy), snapshot(fresh.policy));
          if (diff) {
            throw new Error(
              `${name}: after save → load → one update, the restored policy differs from the original: ${diff}. ` +
                'state() must hold everything the update depends on (optimizer moments and step, RNG state, running ' +
                'statistics, critic weights).',
            );
          }
          const [sa, sb] = [await stateTensorsHost(a.instance), await stateTensorsHost(fresh.instance)];
          const stateDiff = firstDifference(sa.tensors, sb.tensors);
          if (stateDiff)
            throw new Error(
              `${name}: after the round trip and one update, state() tensors differ: ${stateDiff}.`,
            );
          if (sa.json !== sb.json)
            throw new Error(
              `${name}: after the round trip and one update, state().json differs:\n${sa.json}\n${sb.json}`,
            );
        } finally {
          a?.dispose();
          fresh?.dispose();
          b.dispose();
        }
      },
    },
    {
      name: 'determinism',
      title: 'same seed gives identical parameters after N updates',
      run: async () => {
        const runOnce = async (): Promise<{
          initial: Map<string, Float32Array>;
          final: Map<string, Float32Array>;
        }> => {
          let result: { initial: Map<string, Float32Array>; final: Map<string, Float32Array> } | undefined;
          await withFixture(async (f) => {
            const initial = snapshot(f.policy);
            for (let k = 0; k < o.updates; k++) await f.update(await f.rollout(k), k, `(update ${k + 1})`);
            result = { initial, final: snapshot(f.policy) };
          });
          return result!;
        };
        const first = await runOnce();
        const second = await runOnce();
        const diff = firstDifference(first.final, second.final);
        if (diff) {
          throw new Error(
            `${name}: two runs with the same seeds differ after ${o.updates} updates: ${diff}. Draw all randomness ` +
              'from createRng(context.seed) (no Math.random, no unseeded tf.random*).',
          );
        }
        if (!firstDifference(first.initial, first.final)) {
          throw new Error(
            `${name}: ${o.updates} updates left every policy parameter unchanged; update() must train the policy.`,
          );
        }
      },
    },
  ];
  return checks.filter((c) => !skip.has(c.name));
}

/** The subset of a test framework that {@link describeConformance} needs (vitest's and jest's fit). */
export interface TestRegistrar {
  describe: (name: string, body: () => void) => void;
  it: (name: string, fn: () => Promise<void>, timeout?: number) => void;
}

/**
 * Registers the conformance checks as tests, e.g. in a plugin's `src/plugin.test.ts`:
 * ```ts
 * import { describe, it, beforeAll } from 'vitest';
 * import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
 * import { describeConformance } from '@relign/core/testing';
 * import plugin from './index.js';
 * describe.each(TEST_BACKENDS)('%s', (backend) => {
 *   beforeAll(() => useBackend(backend));
 *   describeConformance({ describe, it }, plugin, { config: { epochs: 2 } });
 * });
 * ```
 * @param timeoutMs per-check timeout passed to `it` (default 60 s).
 */
export function describeConformance<C>(
  test: TestRegistrar,
  plugin: AlgorithmPlugin<C>,
  options: ConformanceOptions<NoInfer<C>> = {},
  timeoutMs = 60_000,
): void {
  test.describe(`${plugin.name} conformance`, () => {
    for (const check of conformanceChecks(plugin, options))
      test.it(`${check.name}: ${check.title}`, check.run, timeoutMs);
  });
}
