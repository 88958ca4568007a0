import { describe, expect, expectTypeOf, it } from 'vitest';
import type { CausalLM } from '@relign/lm';
import type { RewardFunction } from '@relign/reward-model';
import {
  checkConfig,
  closestKey,
  configSchema,
  defaultsOf,
  describeField,
  enumField,
  integerField,
  listConfigFields,
  numberField,
  resolveConfig,
  sectionField,
  stringListField,
  type InferConfig,
} from './config.js';
import { createInstance, resolvePluginConfig, type ConfigOf } from './plugin.js';
import { registerPlugin, unregisterPlugin } from './registry.js';
import { Trainer } from './trainer.js';
import { conformanceChecks } from './testing/conformance.js';
import { reinforcePlugin, type ReinforceConfig } from './testing/reinforce-plugin.js';

const schema = configSchema({
  lr: numberField({ default: 1e-5, min: 0, exclusiveMin: true, description: 'AdamW lr' }),
  epochs: integerField({ default: 4, min: 1, max: 100, description: 'passes' }),
  mode: enumField({ default: 'a', values: ['a', 'b'], description: 'mode' }),
});

describe('config schemas (valibot)', () => {
  it('give the static type and the defaults from one declaration', () => {
    expectTypeOf<InferConfig<typeof schema>>().toEqualTypeOf<{
      lr: number;
      epochs: number;
      mode: 'a' | 'b';
    }>();
    expect(defaultsOf(schema)).toEqual({ lr: 1e-5, epochs: 4, mode: 'a' });
    expect(resolveConfig(schema, { epochs: 2, lr: undefined }, 'x')).toEqual({
      lr: 1e-5,
      epochs: 2,
      mode: 'a',
    });
  });

  it('reject unknown keys with the closest known one, and list every problem', () => {
    expect(() => resolveConfig(schema, { lrr: 1 }, 'algo config')).toThrow(
      "algo config: unknown key 'lrr' (did you mean 'lr'?); known keys: lr, epochs, mode",
    );
    const result = checkConfig(schema, { lrr: 1, epohcs: 2, lr: -1, mode: 'c' });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toEqual([
      'lr must be in (0, inf) (got -1; default 0.00001): AdamW lr',
      "mode must be one of 'a', 'b' (got 'c')",
      "unknown key 'lrr' (did you mean 'lr'?); known keys: lr, epochs, mode",
      "unknown key 'epohcs' (did you mean 'epochs'?); known keys: lr, epochs, mode",
    ]);
  });

  it('name the field, the range and the default of a bad value', () => {
    expect(() => resolveConfig(schema, { lr: 0 }, 'c')).toThrow(
      "c: 'lr' must be in (0, inf) (got 0); default 0.00001: AdamW lr",
    );
    expect(() => resolveConfig(schema, { epochs: 2.5 }, 'c')).toThrow(
      "c: 'epochs' must be an integer (got 2.5)",
    );
    expect(() => resolveConfig(schema, { epochs: 'x' }, 'c')).toThrow(
      "c: 'epochs' must be a whole number (got 'x')",
    );
    expect(() => resolveConfig(schema, { lr: Infinity }, 'c')).toThrow("'lr' must be a finite number");
    expect(() => resolveConfig(schema, [1], 'c')).toThrow('c: expected an object of settings, got an array.');
  });

  it('nest sections and read every field back for help text', () => {
    const app = configSchema({
      sft: sectionField({ steps: integerField({ default: 10, min: 1, description: 'SFT steps' }) }),
      algos: stringListField({ default: ['x'], minItems: 1, description: 'optimizers' }),
    });
    expect(defaultsOf(app)).toEqual({ sft: { steps: 10 }, algos: ['x'] });
    expect(checkConfig(app, { sft: { stpes: 1 } })).toEqual({
      ok: false,
      problems: ["unknown key 'sft.stpes' (did you mean 'sft.steps'?); known keys of sft: steps"],
    });
    expect(checkConfig(app, { algos: ['a', 'a'] })).toEqual({
      ok: false,
      problems: ['algos lists a name twice (["a","a"])'],
    });
    expect(listConfigFields(app).map((f) => [f.path, f.field.type, f.field.default])).toEqual([
      ['sft.steps', 'integer', 10],
      ['algos', 'string[]', ['x']],
    ]);
    expect(describeField(schema.entries.lr)).toMatchObject({
      type: 'number',
      min: 0,
      exclusiveMin: true,
      default: 1e-5,
      description: 'AdamW lr',
    });
  });

  it('suggest only close keys', () => {
    expect(closestKey('lrr', ['lr', 'epochs'])).toBe('lr');
    expect(closestKey('zzzzzz', ['lr', 'epochs'])).toBeUndefined();
  });
});

describe('typed plugins (checked by tsc: an unused @ts-expect-error fails `npm run typecheck`)', () => {
  it('accept a typed plugin in the registry, createInstance, the conformance suite and the Trainer', () => {
    expectTypeOf<ConfigOf<typeof reinforcePlugin>>().toEqualTypeOf<ReinforceConfig>();
    registerPlugin(reinforcePlugin);
    unregisterPlugin(reinforcePlugin.name);
    expect(conformanceChecks(reinforcePlugin, { config: { epochs: 2 } }).length).toBeGreaterThan(0);
    // @ts-expect-error a misspelled key of the plugin's config is a compile error
    conformanceChecks(reinforcePlugin, { config: { epoch: 2 } });
    const _made = () => createInstance(reinforcePlugin, {} as never);
    expectTypeOf<ReturnType<typeof _made>['config']>().toEqualTypeOf<ReinforceConfig>();
    expectTypeOf(resolvePluginConfig(reinforcePlugin, {})).toEqualTypeOf<ReinforceConfig>();

    // Never called: tsc checks the Trainer's `pluginConfig` against the plugin's config type.
    const base = (policy: CausalLM, reward: RewardFunction) => ({
      policy,
      reward,
      prompts: [[1]],
      generation: { maxNewTokens: 2, stopTokenIds: [0] },
      promptsPerIteration: 1,
      iterations: 1,
    });
    const typedTrainer = (policy: CausalLM, reward: RewardFunction) => [
      new Trainer({
        ...base(policy, reward),
        plugin: reinforcePlugin,
        pluginConfig: { lr: 1e-3, epochs: 2 },
      }),
      new Trainer({
        ...base(policy, reward),
        plugin: reinforcePlugin,
        // @ts-expect-error 'lrr' is not a key of the reinforce config
        pluginConfig: { lrr: 1e-3 },
      }),
      new Trainer({
        ...base(policy, reward),
        plugin: reinforcePlugin,
        // @ts-expect-error a value of the wrong type
        pluginConfig: { epochs: 'two' },
      }),
      // By name, the config is only checked at run time.
      new Trainer({
        ...base(policy, reward),
        plugin: 'reinforce',
        pluginConfig: { anything: 1 },
      }),
    ];
    expect(typeof typedTrainer).toBe('function');
    // At run time the same typo is rejected by the schema.
    expect(() => resolvePluginConfig(reinforcePlugin, { lrr: 1e-3 })).toThrow(
      "reinforce config: unknown key 'lrr' (did you mean 'lr'?)",
    );
  });
});
