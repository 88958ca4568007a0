import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { createRng } from '@relign/tensor';
import { configSchema, integerField, numberField } from '../config.js';
import { definePlugin, type AlgorithmPlugin, type AlgorithmInstance } from '../plugin.js';
import { conformanceChecks, describeConformance, type ConformanceCheckName } from './conformance.js';
import { reinforceConfigSchema, reinforcePlugin, type ReinforceConfig } from './reinforce-plugin.js';

/** Runs one named check and returns its error message (undefined when it passed). */
async function failure(
  plugin: AlgorithmPlugin<ReinforceConfig>,
  check: ConformanceCheckName,
): Promise<string | undefined> {
  const found = conformanceChecks(plugin).find((c) => c.name === check)!;
  try {
    await found.run();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The example plugin with its instance wrapped by `wrap` (to inject faults). */
function broken(
  name: string,
  wrap: (inner: AlgorithmInstance) => Partial<AlgorithmInstance>,
  schema?: Partial<typeof reinforceConfigSchema.entries>,
): AlgorithmPlugin<ReinforceConfig> {
  return definePlugin<ReinforceConfig>({
    ...reinforcePlugin,
    name,
    configSchema: configSchema({ ...reinforceConfigSchema.entries, ...schema }),
    create: (ctx, config) => {
      const inner = reinforcePlugin.create(ctx, config);
      const over = wrap(inner);
      return {
        update: over.update ?? ((b, c) => inner.update(b, c)),
        evaluate: over.evaluate ?? ((b, c) => inner.evaluate(b, c)),
        state: over.state ?? (() => inner.state()),
        load: over.load ?? ((s) => inner.load(s)),
        dispose: over.dispose ?? (() => inner.dispose()),
      };
    },
  });
}

describe.each(TEST_BACKENDS)('conformance suite on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  // The example plugin passes every check, registered the way plugin packages do it; two minibatches per
  // epoch and two epochs exercise the plugin's seeded shuffle (whose RNG state must be checkpointed).
  describeConformance({ describe, it }, reinforcePlugin, {
    config: { epochs: 2, groupsPerMinibatch: 2 },
  });

  it('fails a plugin whose ratios are not 1 on a fresh rollout', async () => {
    const p = broken('bad-ratio', (inner) => ({
      evaluate: async (b, c) => ({ ...(await inner.evaluate(b, c)), 'policy/ratio_max': 1.01 }),
    }));
    expect(await failure(p, 'ratio-one')).toMatch(/'policy\/ratio_max' = 1\.01/);
  });

  it('fails a plugin that leaks a tensor per update', async () => {
    const kept: tf.Tensor[] = [];
    const p = broken('leaky', (inner) => ({
      update: async (b, c) => {
        kept.push(tf.zeros([2]));
        return inner.update(b, c);
      },
    }));
    expect(await failure(p, 'no-leaks')).toMatch(/leaky: update\(\) leaks tensors/);
    tf.dispose(kept);
  });

  it('fails a plugin whose state omits its RNG (resume would diverge)', async () => {
    // state() without the shuffle stream: the restored instance reshuffles from the seed.
    const p = broken('forgetful', (inner) => ({
      state: () => {
        const s = inner.state();
        return { json: { ...s.json, rng: createRng(1234).state() }, tensors: s.tensors };
      },
    }));
    const checks = conformanceChecks(p, { config: { epochs: 2, groupsPerMinibatch: 1 } });
    await expect(checks.find((c) => c.name === 'state-round-trip')!.run()).rejects.toThrow(
      /restored policy differs/,
    );
  });

  it('fails a plugin with unseeded randomness and one that does not train', async () => {
    const noisy = definePlugin<ReinforceConfig>({
      ...reinforcePlugin,
      name: 'noisy',
      create: (ctx, config) => {
        const inner = reinforcePlugin.create(ctx, config);
        return {
          ...inner,
          update: async (b, c) => {
            const m = await inner.update(b, c);
            const bias = ctx.policy.variables().get('ln_f.bias')!;
            tf.tidy(() => bias.assign(tf.add(bias, Math.random() * 1e-3)));
            return m;
          },
          evaluate: (b, c) => inner.evaluate(b, c),
          state: () => inner.state(),
          load: (s) => inner.load(s),
          dispose: () => inner.dispose(),
        };
      },
    });
    expect(await failure(noisy, 'determinism')).toMatch(
      /two runs with the same seeds differ after 3 updates: '/,
    );
    const idle = broken('idle', () => ({ update: async () => ({ 'loss/policy': 0 }) }));
    expect(await failure(idle, 'determinism')).toMatch(/left every policy parameter unchanged/);
  });

  it('fails a plugin returning non-finite metrics', async () => {
    const p = broken('nan-metric', (inner) => ({
      update: async (b, c) => ({ ...(await inner.update(b, c)), 'loss/policy': NaN }),
    }));
    expect(await failure(p, 'requirements')).toMatch(/metric 'loss\/policy' = NaN is not a finite number/);
  });
});

describe('conformance suite: config checks', () => {
  beforeAll(() => useBackend('cpu'));
  it('fails a plugin whose schema has no bounds and one whose default is out of range', async () => {
    const unbounded = broken('unbounded', () => ({}), {
      lr: numberField({ default: 1e-3, description: 'lr' }),
    });
    // Other fields are still bounded: passes.
    expect(await failure(unbounded, 'invalid-config')).toBeUndefined();
    const badDefault = broken('bad-default', () => ({}), {
      epochs: integerField({ default: 0, min: 1, description: 'epochs' }),
    });
    expect(await failure(badDefault, 'invalid-config')).toMatch(/'epochs' must be in \[1/);
  });

  it('requires extra invalid configs to be rejected with the given text', async () => {
    const checks = conformanceChecks(reinforcePlugin, {
      invalidConfigs: [{ config: { epochs: 2 }, message: 'epochs' }],
    });
    await expect(checks.find((c) => c.name === 'invalid-config')!.run()).rejects.toThrow(
      /was accepted; it must be rejected/,
    );
  });

  it('skips what is asked', () => {
    const names = conformanceChecks(reinforcePlugin, {
      skip: ['determinism'],
    }).map((c) => c.name);
    expect(names).toEqual(['requirements', 'invalid-config', 'ratio-one', 'no-leaks', 'state-round-trip']);
  });
});
