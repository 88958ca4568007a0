import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM } from '@relign/lm';
import type { RewardFunction } from '@relign/reward-model';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { CONFORMANCE_DEFAULTS, countLowIdsReward, reinforcePlugin } from './testing/index.js';
import { registerPlugin, unregisterPlugin } from './registry.js';
import { definePlugin, type Metrics } from './plugin.js';
import { Trainer, type TrainerEvents, type TrainerOptions } from './trainer.js';

const MODEL = CONFORMANCE_DEFAULTS.model;
const PROMPTS = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10], [11, 12], [13, 14, 15]];
const plugin = reinforcePlugin;

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'relign-core-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function options(policy: CausalLM, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    policy,
    prompts: PROMPTS,
    reward: countLowIdsReward(),
    plugin,
    pluginConfig: { lr: 1e-2, epochs: 2, groupsPerMinibatch: 2 },
    generation: { maxNewTokens: 5, stopTokenIds: [0] },
    promptsPerIteration: 3,
    iterations: 4,
    seed: 11,
    ...extra,
  };
}

function snapshot(model: CausalLM): Map<string, Float32Array> {
  return new Map([...model.variables()].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

function expectSameParameters(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, x] of a) {
    const y = b.get(name)!;
    let same = x.length === y.length;
    for (let i = 0; same && i < x.length; i++) same = Object.is(x[i], y[i]);
    expect(same, `parameter ${name} differs`).toBe(true);
  }
}

/** Metrics without wall-clock entries (which differ between runs by nature). */
function deterministic(m: Metrics): Metrics {
  return Object.fromEntries(
    Object.entries(m).filter(([k]) => !k.startsWith('time/') && !k.startsWith('throughput/')),
  );
}

describe.each(TEST_BACKENDS)('Trainer on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('a run interrupted after step k and resumed ends with the same parameters as an uninterrupted run', async () => {
    // Adaptive KL with a short horizon (β moves every step) and a buffer holding two iterations (updates
    // replay older groups), so KL controller, buffer, plugin RNG/optimizer and prompt position all matter.
    const extra: Partial<TrainerOptions> = {
      kl: { kind: 'adaptive', initial: 0.1, target: 0.5, horizon: 20 },
      bufferCapacity: 6,
    };
    const straightPolicy = CausalLM.create(MODEL, 7);
    const straightMetrics: Metrics[] = [];
    const straight = new Trainer(
      options(straightPolicy, { ...extra, onMetrics: (m) => straightMetrics.push(m) }),
    );
    const r0 = await straight.train();
    expect(r0).toMatchObject({ step: 4, stopped: 'completed' });
    const expected = snapshot(straightPolicy);
    straight.dispose();
    straightPolicy.dispose();

    const dir = await tempDir();
    const metricsPath = join(dir, 'metrics.jsonl');
    const controller = new AbortController();
    const firstPolicy = CausalLM.create(MODEL, 7);
    const first = new Trainer(
      options(firstPolicy, {
        ...extra,
        checkpointDir: join(dir, 'ckpt'),
        metricsPath,
        signal: controller.signal,
        onMetrics: (_m, step) => {
          if (step === 2) controller.abort();
        },
      }),
    );
    const r1 = await first.train();
    expect(r1.stopped).toBe('aborted');
    expect(r1.step).toBe(2);
    expect(r1.checkpoint).toMatch(/step-00000002$/);
    // The interrupted process keeps going a little (its weights change) before dying: the resume must not care.
    await first.step();
    first.dispose();
    firstPolicy.dispose();

    const resumedPolicy = CausalLM.create(MODEL, 7); // the same starting (SFT) model as the original run
    const resumedMetrics: Metrics[] = [];
    const resumed = new Trainer(
      options(resumedPolicy, {
        ...extra,
        checkpointDir: join(dir, 'ckpt'),
        metricsPath,
        resume: true,
        onMetrics: (m) => resumedMetrics.push(m),
      }),
    );
    const r2 = await resumed.train();
    expect(r2).toMatchObject({ step: 4, stopped: 'completed' });
    expectSameParameters(snapshot(resumedPolicy), expected);
    // Steps 3 and 4 report what the uninterrupted run reported.
    expect(resumedMetrics.map(deterministic)).toEqual(straightMetrics.slice(2).map(deterministic));
    // The JSONL has each step once: the interrupted run's extra step 3 was dropped on resume.
    const lines = (await readFile(metricsPath, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Metrics);
    expect(lines.map((l) => l['train/step'])).toEqual([1, 2, 3, 4]);
    expect(deterministic(lines[3]!)).toEqual(deterministic(straightMetrics[3]!));
    resumed.dispose();
    resumedPolicy.dispose();
  });

  it('reports the stable metrics, consistent with the rollout it trained on', async () => {
    const policy = CausalLM.create(MODEL, 7);
    const trainer = new Trainer(
      options(policy, { iterations: 2, kl: { kind: 'adaptive', initial: 0.1, target: 0.5, horizon: 20 } }),
    );
    const rollouts: TrainerEvents['rollout'][] = [];
    const events: Metrics[] = [];
    trainer.on('rollout', (r) => rollouts.push(r));
    trainer.on('metrics', ({ metrics }) => events.push(metrics));
    await trainer.train();
    expect(events).toHaveLength(2);
    const [m1, m2] = events as [Metrics, Metrics];
    const { batch, rewards } = rollouts[0]!;
    const B = batch.batchSize;
    expect(B).toBe(6); // 3 prompts × 2 responses (the plugin's requirement)
    const mean = rewards.reduce((a, v) => a + v, 0) / B;
    expect(m1['reward/mean']).toBeCloseTo(mean, 6);
    expect(m1['reward/std']).toBeCloseTo(Math.sqrt(rewards.reduce((a, v) => a + (v - mean) ** 2, 0) / B), 6);
    let entropy = 0;
    let len = 0;
    for (let b = 0; b < B; b++) {
      len += batch.responseLengths[b]!;
      for (let t = 0; t < batch.responseLengths[b]!; t++)
        entropy -= batch.logprobs[b * batch.responseWidth + t]!;
    }
    expect(m1['objective/entropy']).toBeCloseTo(entropy / B, 4);
    expect(m1['response/length_mean']).toBeCloseTo(len / B, 6);
    expect(m1['response/eos_rate']).toBeCloseTo(batch.endedWithEos.reduce((a, v) => a + v, 0) / B, 6);
    // Step 1: policy = reference, so the KL of the rollout is 0 up to float32 rounding of two code paths.
    expect(Math.abs(m1['objective/kl']!)).toBeLessThan(1e-3);
    expect(m1['objective/kl_coef']).toBe(0.1);
    // The adaptive controller (docs/algorithms.md §4.7) moved β with the measured KL over B samples.
    const e = Math.min(Math.max(m1['objective/kl']! / 0.5 - 1, -0.2), 0.2);
    expect(m2['objective/kl_coef']).toBeCloseTo(0.1 * (1 + (e * B) / 20), 12);
    expect(m2['objective/kl']).toBeGreaterThan(m1['objective/kl']!); // the policy moved away from the reference
    for (const key of ['time/rollout_s', 'time/update_s', 'throughput/tokens_per_s'])
      expect(m1[key]).toBeGreaterThan(0);
    expect([m1['train/step'], m2['train/step']]).toEqual([1, 2]);
    expect(m1['loss/policy']).toBeTypeOf('number'); // the plugin's own metrics are passed through
    expect(m1['train/lr']).toBe(1e-2);
    expect(m2['reward/running_mean']).toBeCloseTo(
      [...rewards, ...rollouts[1]!.rewards].reduce((a, v) => a + v, 0) / (2 * B),
      6,
    );
    trainer.dispose();
    policy.dispose();
  });

  it('does not leak tensors over iterations', async () => {
    const policy = CausalLM.create(MODEL, 7);
    const trainer = new Trainer(options(policy, { iterations: 100 }));
    await assertNoLeaks(() => trainer.step().then(() => undefined), {
      warmup: 1,
      iterations: 2,
      label: 'Trainer.step',
    });
    const before = tf.memory().numTensors;
    trainer.dispose();
    expect(tf.memory().numTensors).toBeLessThan(before); // the default reference and the optimizer were freed
    policy.dispose();
  });

  it('surfaces skipped updates and never writes non-finite weights', async () => {
    // Rewards near float32's limit: the policy gradient overflows, the plugin skips the step.
    const huge: RewardFunction = {
      name: 'huge',
      inputKind: 'tokens',
      score: async (_p, responses) =>
        Float32Array.from(
          responses as Int32Array[],
          (r, i) => (i % 2 === 0 ? 3e38 : -3e38) * Math.min(1, r.length),
        ),
    };
    const policy = CausalLM.create(MODEL, 7);
    const before = snapshot(policy);
    const trainer = new Trainer(options(policy, { reward: huge, iterations: 1, pluginConfig: { lr: 1e-2 } }));
    const warnings: string[] = [];
    trainer.on('warning', ({ message }) => warnings.push(message));
    const m = await trainer.step();
    expect(m['train/skipped_steps']).toBe(1);
    expect(m['train/skipped_steps_total']).toBe(1);
    expect(warnings.join('\n')).toMatch(/skipped 1 optimizer step/);
    expectSameParameters(snapshot(policy), before);
    trainer.dispose();
    policy.dispose();
  });

  it('skips a finite but exploding update (lr 1e30), says so, and checkpoints the unchanged weights', async () => {
    const dir = await tempDir();
    const policy = CausalLM.create(MODEL, 7);
    const before = snapshot(policy);
    const trainer = new Trainer(
      options(policy, { iterations: 1, pluginConfig: { lr: 1e30 }, checkpointDir: dir, checkpointEvery: 1 }),
    );
    const warnings: string[] = [];
    trainer.on('warning', ({ message }) => warnings.push(message));
    await trainer.train();
    expect(warnings.join('\n')).toMatch(/skipped 1 optimizer step\(s\).*update beyond the guard's bounds/);
    expectSameParameters(snapshot(policy), before);
    expect((await readdir(dir)).sort()).toEqual(['latest.json', 'step-00000001']);
    trainer.dispose();
    policy.dispose();
  });
});
describe('Trainer (cpu)', () => {
  beforeAll(() => useBackend('cpu'));

  it('rejects a non-finite reward naming the row, before anything reaches the buffer', async () => {
    const bad: RewardFunction = {
      name: 'flaky',
      inputKind: 'tokens',
      score: async (p) => Float32Array.from({ length: p.length }, (_x, i) => (i === 3 ? NaN : 1)),
    };
    const policy = CausalLM.create(MODEL, 7);
    const trainer = new Trainer(options(policy, { reward: bad }));
    await expect(trainer.step()).rejects.toThrow(
      /"flaky" returned a non-finite score \(NaN\) for row 3 \(prompt 1 of the iteration, response 1\)/,
    );
    expect(trainer.stepsDone).toBe(0);
    expect(trainer.policyVersion).toBe(0);
    trainer.dispose();
    policy.dispose();
  });

  it('hands out prompts by epochs, each a seeded permutation', async () => {
    const policy = CausalLM.create(MODEL, 7);
    const prompts = PROMPTS.slice(0, 5);
    const trainer = new Trainer(options(policy, { prompts, promptsPerIteration: 2, iterations: 5 }));
    const seen: number[] = [];
    trainer.on('rollout', ({ promptIndices, batch }) => {
      seen.push(...promptIndices);
      // The batch answers those prompts, in order, two responses each.
      promptIndices.forEach((p, g) => {
        const L = batch.promptLengths[2 * g]!;
        const row = batch.promptTokens.slice(
          2 * g * batch.promptWidth + batch.promptWidth - L,
          (2 * g + 1) * batch.promptWidth,
        );
        expect([...row]).toEqual(prompts[p]);
      });
    });
    await trainer.train();
    expect(seen).toHaveLength(10);
    expect([...seen.slice(0, 5)].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...seen.slice(5, 10)].sort()).toEqual([0, 1, 2, 3, 4]);
    trainer.dispose();
    policy.dispose();
  });

  it('evaluates on fixed-seed samples and merges eval metrics into the step', async () => {
    const policy = CausalLM.create(MODEL, 7);
    const trainer = new Trainer(
      options(policy, { evalPrompts: PROMPTS.slice(0, 4), evalEvery: 2, iterations: 2 }),
    );
    const before = await trainer.evaluate();
    expect(await trainer.evaluate()).toEqual(before); // same policy, same seed: same evaluation
    expect(Math.abs(before['eval/objective/kl']!)).toBeLessThan(1e-3);
    const evals: TrainerEvents['eval'][] = [];
    trainer.on('eval', (e) => evals.push(e));
    const result = await trainer.train();
    expect(evals.map((e) => e.step)).toEqual([2]);
    for (const key of [
      'eval/reward/mean',
      'eval/reward/std',
      'eval/objective/kl',
      'eval/response/length_mean',
      'eval/response/eos_rate',
    ]) {
      expect(result.metrics![key], key).toBe(evals[0]!.metrics[key]);
    }
    expect(evals[0]!.metrics['eval/objective/kl']).not.toBe(before['eval/objective/kl']);
    trainer.dispose();
    policy.dispose();
  });

  it('writes checkpoints atomically, keeps the newest, and refuses NaN weights', async () => {
    const dir = await tempDir();
    const ckpt = join(dir, 'ckpt');
    const policy = CausalLM.create(MODEL, 7);
    const trainer = new Trainer(
      options(policy, { iterations: 3, checkpointDir: ckpt, checkpointEvery: 1, keepCheckpoints: 2 }),
    );
    const saved: string[] = [];
    trainer.on('checkpoint', ({ path }) => saved.push(path));
    await mkdir(join(ckpt, 'step-00000001.tmp-abcdef'), { recursive: true }); // debris of a crashed save
    await trainer.train();
    expect(saved.map((p) => p.slice(-13))).toEqual(['step-00000001', 'step-00000002', 'step-00000003']);
    expect((await readdir(ckpt)).sort()).toEqual(['latest.json', 'step-00000002', 'step-00000003']);
    expect((await readdir(join(ckpt, 'step-00000003'))).sort()).toEqual([
      'buffer',
      'plugin.json',
      'plugin.safetensors',
      'policy',
      'trainer_state.json',
    ]);
    const latest = await readFile(join(ckpt, 'latest.json'), 'utf8');
    // NaN or exploded (finite) weights in the policy: the checkpoint is refused, the previous one stays in force.
    const w = policy.variables().get('ln_f.weight')!;
    tf.tidy(() => w.assign(tf.fill(w.shape, NaN)));
    await expect(trainer.saveCheckpoint()).rejects.toThrow(
      /'ln_f.weight' is not finite \(NaN\/Inf weights\); refusing to write them/,
    );
    tf.tidy(() => w.assign(tf.fill(w.shape, 1e30)));
    await expect(trainer.saveCheckpoint()).rejects.toThrow(
      /'ln_f.weight' has \|w\| up to 1.00e\+30, beyond the bound 1.00e\+4 \(exploded weights\); refusing/,
    );
    expect(await readFile(join(ckpt, 'latest.json'), 'utf8')).toBe(latest);
    expect((await readdir(ckpt)).sort()).toEqual(['latest.json', 'step-00000002', 'step-00000003']);
    trainer.dispose();
    policy.dispose();
  });

  it.each([
    [Infinity, /'h.0.mlp.c_fc.bias' is not finite \(NaN\/Inf weights\): plugin 'nan-writer' wrote them/],
    [1e20, /'h.0.mlp.c_fc.bias' has \|w\| up to 1.00e\+20, beyond the bound .* \(exploded weights\)/],
  ])('stops when a plugin writes %s weights, before any checkpoint holds them', async (value, message) => {
    const dir = await tempDir();
    let calls = 0;
    const nanWriter = definePlugin({
      ...reinforcePlugin,
      name: 'nan-writer',
      create: (ctx, config) => {
        const inner = reinforcePlugin.create(ctx, config);
        return {
          ...inner,
          update: async (b, c) => {
            const m = await inner.update(b, c);
            if (++calls === 2) {
              const w = ctx.policy.variables().get('h.0.mlp.c_fc.bias')!;
              tf.tidy(() => w.assign(tf.fill(w.shape, value)));
            }
            return m;
          },
          evaluate: (b, c) => inner.evaluate(b, c),
          state: () => inner.state(),
          load: (s) => inner.load(s),
          dispose: () => inner.dispose(),
        };
      },
    });
    const policy = CausalLM.create(MODEL, 7);
    const trainer = new Trainer(
      options(policy, { plugin: nanWriter, iterations: 3, checkpointDir: dir, checkpointEvery: 1 }),
    );
    const error = await trainer.train().then(
      () => new Error('no error'),
      (e: Error) => e,
    );
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^Trainer: after update 2, .*last good: .*step-00000001/);
    expect(JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')).step).toBe(1);
    expect((await readdir(dir)).sort()).toEqual(['latest.json', 'step-00000001']);
    trainer.dispose();
    policy.dispose();
  });

  it('refuses to resume against a different reference model', async () => {
    const dir = await tempDir();
    const policy = CausalLM.create(MODEL, 7);
    const trainer = new Trainer(options(policy, { iterations: 1, checkpointDir: dir }));
    await trainer.train();
    trainer.dispose();
    // Passing the trained policy (instead of the SFT model) makes the default reference the trained one.
    const wrong = new Trainer(options(policy, { checkpointDir: dir, resume: true }));
    await expect(wrong.init()).rejects.toThrow(/reference model differs/);
    wrong.dispose();
    policy.dispose();
  });

  it('warns when a resume changes the seed or the plugin settings', async () => {
    const dir = await tempDir();
    const policy = CausalLM.create(MODEL, 7);
    const first = new Trainer(options(policy, { iterations: 1, checkpointDir: dir }));
    await first.train();
    first.dispose();
    const sft = CausalLM.create(MODEL, 7);
    const resumed = new Trainer(
      options(sft, {
        checkpointDir: dir,
        resume: true,
        seed: 12,
        pluginConfig: { lr: 1e-3, epochs: 2, groupsPerMinibatch: 2 },
      }),
    );
    const warnings: TrainerEvents['warning'][] = [];
    resumed.on('warning', (w) => warnings.push(w));
    await resumed.init();
    expect(warnings.map((w) => w.step)).toEqual([1, 1]);
    expect(warnings[0]!.message).toMatch(/the seed is 12 but the checkpoint's run used 11/);
    expect(warnings[1]!.message).toMatch(/plugin config differs from the checkpoint's in: lr/);
    resumed.dispose();
    sft.dispose();
    policy.dispose();
  });

  it('resolves a plugin by name through the registry and validates its config', async () => {
    const policy = CausalLM.create(MODEL, 7);
    registerPlugin(definePlugin({ ...reinforcePlugin, name: 'core-test-reinforce' }));
    try {
      const byName = new Trainer(options(policy, { plugin: 'core-test-reinforce', iterations: 1 }));
      expect((await byName.train()).step).toBe(1);
      byName.dispose();
      const typo = new Trainer(
        options(policy, { plugin: 'core-test-reinforce', pluginConfig: { epoch: 2 } }),
      );
      await expect(typo.init()).rejects.toThrow(/unknown key 'epoch' \(did you mean 'epochs'\?\)/);
      typo.dispose();
    } finally {
      unregisterPlugin('core-test-reinforce');
      policy.dispose();
    }
  });

  it('validates its options with messages naming the field', () => {
    const policy = CausalLM.create(MODEL, 7);
    expect(() => new Trainer(options(policy, { promptsPerIteration: 0 }))).toThrow(
      'options.promptsPerIteration must be an integer >= 1',
    );
    expect(() => new Trainer(options(policy, { evalEvery: 2 }))).toThrow(
      'options.evalEvery needs options.evalPrompts',
    );
    expect(() => new Trainer(options(policy, { checkpointEvery: 2 }))).toThrow(
      'options.checkpointEvery needs options.checkpointDir',
    );
    expect(() => new Trainer(options(policy, { prompts: [[1], []] }))).toThrow(
      'options.prompts[1] must be a non-empty array',
    );
    expect(() => new Trainer(options(policy, { prompts: { tokens: [[1]], texts: ['a', 'b'] } }))).toThrow(
      'one text per token array',
    );
    expect(() => new Trainer(options(policy, { kl: { kind: 'fixed', value: -1 } }))).toThrow('>= 0');
    expect(() => new Trainer(options(policy, { resume: true }))).toThrow('needs options.checkpointDir');
    policy.dispose();
  });
});
