/**
 * The Trainer with an injected file system (`useFileSystem(createMemoryFileSystem().fs)` of @relign/tensor), as a
 * browser page runs it: checkpoints and metrics.jsonl go to memory, nothing to disk, and a run resumes from them
 * with the parameters of an uninterrupted run.
 */
import { access } from 'node:fs/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { createMemoryFileSystem, useFileSystem } from '@relign/tensor';
import { useBackend } from '@relign/tensor/testing';
import { CONFORMANCE_DEFAULTS, countLowIdsReward, reinforcePlugin } from './testing/index.js';
import { Trainer, type TrainerOptions } from './trainer.js';

const options = (policy: CausalLM, extra: Partial<TrainerOptions> = {}): TrainerOptions => ({
  policy,
  prompts: [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10], [11, 12], [13, 14, 15]],
  reward: countLowIdsReward(),
  plugin: reinforcePlugin,
  pluginConfig: { lr: 1e-2, epochs: 2, groupsPerMinibatch: 2 },
  generation: { maxNewTokens: 5, stopTokenIds: [0] },
  promptsPerIteration: 3,
  iterations: 3,
  seed: 5,
  ...extra,
});

const weights = async (m: CausalLM) =>
  Promise.all([...m.variables()].map(async ([n, v]) => [n, Array.from(await v.data())] as const));

describe('Trainer on an in-memory file system', () => {
  beforeAll(() => useBackend('cpu'));
  afterEach(() => useFileSystem(undefined));

  it('checkpoints and logs metrics to memory only, and resumes from there', async () => {
    const straightPolicy = CausalLM.create(CONFORMANCE_DEFAULTS.model, 3);
    const straight = new Trainer(options(straightPolicy));
    await straight.train();
    const expected = await weights(straightPolicy);
    straight.dispose();
    straightPolicy.dispose();

    const memory = createMemoryFileSystem();
    useFileSystem(memory.fs);
    const run = '/relign-memory-run-test';
    const firstPolicy = CausalLM.create(CONFORMANCE_DEFAULTS.model, 3);
    const first = new Trainer(
      options(firstPolicy, {
        iterations: 2,
        checkpointDir: `${run}/ckpt`,
        checkpointEvery: 1,
        metricsPath: `${run}/metrics.jsonl`,
      }),
    );
    const r1 = await first.train();
    first.dispose();
    firstPolicy.dispose();
    expect(r1.checkpoint).toBe(`${run}/ckpt/step-00000002`);
    const files = [...memory.files().keys()];
    expect(files).toContain(`${run}/ckpt/latest.json`);
    expect(files.some((f) => f.startsWith(`${run}/ckpt/step-00000002/`) && f.endsWith('.safetensors'))).toBe(
      true,
    );
    await expect(access(run)).rejects.toThrow(); // nothing on disk

    const resumedPolicy = CausalLM.create(CONFORMANCE_DEFAULTS.model, 3);
    const resumed = new Trainer(
      options(resumedPolicy, {
        checkpointDir: `${run}/ckpt`,
        metricsPath: `${run}/metrics.jsonl`,
        resume: true,
      }),
    );
    expect(await resumed.train()).toMatchObject({ step: 3, stopped: 'completed' });
    expect(await weights(resumedPolicy)).toEqual(expected);
    const log = new TextDecoder().decode(memory.files().get(`${run}/metrics.jsonl`));
    expect(
      log
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)['train/step']),
    ).toEqual([1, 2, 3]);
    resumed.dispose();
    resumedPolicy.dispose();
  });
});
