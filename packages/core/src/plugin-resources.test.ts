import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM, ScalarHead } from '@relign/lm';
import { useBackend } from '@relign/tensor/testing';
import { CONFORMANCE_DEFAULTS, countLowIdsReward, reinforcePlugin } from './testing/index.js';
import { createInstance, definePlugin, type PluginContext } from './plugin.js';
import { registerPlugin, resolvePlugin, unregisterPlugin } from './registry.js';
import { Trainer } from './trainer.js';

const MODEL = CONFORMANCE_DEFAULTS.model;

describe('plugins given as module namespaces (CommonJS require, import * as)', () => {
  it('registerPlugin, resolvePlugin and the Trainer take the namespace for its default export', async () => {
    const plugin = definePlugin({ ...reinforcePlugin, name: 'core-test-namespace' });
    // What `require('@relign/p3o-v2')` returns for a package built to CommonJS by tsup.
    const cjs = { __esModule: true, default: plugin, reinforceConfigSchema: {} };
    try {
      registerPlugin(cjs);
      expect(await resolvePlugin('core-test-namespace')).toBe(plugin);
      unregisterPlugin('core-test-namespace');
      // Bundler interop that wraps it once more, loaded by name.
      const found = await resolvePlugin('relign-plugin-nested', async () => ({ default: cjs }));
      expect(found).toBe(plugin);
      expect(() => registerPlugin({ default: { name: '' } } as never)).toThrow(/not an AlgorithmPlugin/);
    } finally {
      unregisterPlugin('core-test-namespace');
      unregisterPlugin('relign-plugin-nested');
    }
  });
});

describe('plugin resources: declared in requirements(), given to the Trainer, received in context.resources', () => {
  beforeAll(() => useBackend('cpu'));

  let received: PluginContext['resources'];
  const needsRm = definePlugin({
    ...reinforcePlugin,
    name: 'core-test-needs-rm',
    requirements: (c) => ({
      ...reinforcePlugin.requirements(c),
      resources: { rewardModel: 'the critic is copied from it; or set critic: "policy"' },
    }),
    create: (context, config) => {
      received = context.resources;
      return reinforcePlugin.create(context, config);
    },
  });

  it('passes the Trainer option resources to create, and refuses to start without a required one', async () => {
    const policy = CausalLM.create(MODEL, 7);
    const rewardModel = { backbone: CausalLM.create(MODEL, 9), head: ScalarHead.create(MODEL.n_embd) };
    const options = {
      policy,
      prompts: [[1, 2], [3]],
      reward: countLowIdsReward(),
      plugin: needsRm,
      generation: { maxNewTokens: 2, stopTokenIds: [0] },
      promptsPerIteration: 2,
      iterations: 1,
    };
    try {
      const missing = new Trainer(options);
      await expect(missing.init()).rejects.toThrow(
        "core-test-needs-rm: this algorithm needs the resource 'rewardModel' (the critic is copied from it; or " +
          'set critic: "policy"). Pass it to the Trainer as resources: { rewardModel }',
      );
      missing.dispose();
      const trainer = new Trainer({ ...options, resources: { rewardModel } });
      await trainer.init();
      expect(received?.rewardModel).toBe(rewardModel);
      trainer.dispose();
    } finally {
      policy.dispose();
      rewardModel.backbone.dispose();
      rewardModel.head.dispose();
    }
  });

  it('checks what requirements() declares: known resource names, a finite default β', () => {
    const policy = CausalLM.create(MODEL, 7);
    const bad = (r: object) =>
      definePlugin({
        ...reinforcePlugin,
        name: 'core-test-bad',
        requirements: (c) => ({ ...reinforcePlugin.requirements(c), ...r }),
      });
    try {
      const ctx = { policy, reference: policy, seed: 1 };
      expect(() => createInstance(bad({ resources: { rewardModle: true } }), ctx)).toThrow(
        'requirements().resources.rewardModle is not a resource; the resources are rewardModel, sftExamples',
      );
      expect(() => createInstance(bad({ klCoef: -1 }), ctx)).toThrow('requirements().klCoef must be');
    } finally {
      policy.dispose();
    }
  });

  it("a plugin's default β (requirements().klCoef) is the Trainer's when it has no kl option", async () => {
    const policy = CausalLM.create(MODEL, 7);
    const withBeta = definePlugin({
      ...reinforcePlugin,
      name: 'core-test-beta',
      requirements: (c) => ({ ...reinforcePlugin.requirements(c), klCoef: 0.3 }),
    });
    const options = {
      policy,
      prompts: [[1, 2], [3]],
      reward: countLowIdsReward(),
      plugin: withBeta,
      generation: { maxNewTokens: 2, stopTokenIds: [0] },
      promptsPerIteration: 2,
      iterations: 1,
    };
    try {
      const a = new Trainer(options);
      expect((await a.step())['objective/kl_coef']).toBe(0.3);
      a.dispose();
      const b = new Trainer({ ...options, kl: { kind: 'fixed', value: 0.02 } });
      expect((await b.step())['objective/kl_coef']).toBe(0.02);
      b.dispose();
    } finally {
      policy.dispose();
    }
  });
});
