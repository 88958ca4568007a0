/**
 * `relign train` through the CLI with a plugin that reports a skipped step: the Trainer's warning events
 * reach the output (also those emitted while resuming), and the last two checkpoints are kept.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin, registerPlugin, unregisterPlugin } from '@relign/core';
import { reinforcePlugin, type ReinforceConfig } from '@relign/core/testing';
import { RewardModel } from '@relign/reward-model';
import { saveTokenizer } from '@relign/lm';
import { useBackend } from '@relign/tensor/testing';
import { main } from '../cli/main.js';
import { buildConfig } from '../config/load.js';
import { Progress } from '../progress.js';
import { RunDir } from '../run-dir.js';
import { loadStartingModel, saveModelDir } from '../task/models.js';
import { taskData } from './shared.js';

/** The example plugin, except that every update reports one skipped optimizer step. */
const skippingPlugin = definePlugin<ReinforceConfig>({
  ...reinforcePlugin,
  name: 'skip-test',
  create: (context, config) => {
    const inner = reinforcePlugin.create(context, config);
    return {
      update: async (batch, c) => ({ ...(await inner.update(batch, c)), 'train/skipped_steps': 1 }),
      evaluate: (batch, c) => inner.evaluate(batch, c),
      state: () => inner.state(),
      load: (s) => inner.load(s),
      dispose: () => inner.dispose(),
    };
  },
});

/** Runs the CLI; `abortAt`: a Ctrl-C once the output shows that text. */
async function relign(argv: string[], abortAt?: string): Promise<{ code: number; text: string }> {
  const out: string[] = [];
  const controller = new AbortController();
  const write = (t: string) => {
    out.push(t);
    if (abortAt !== undefined && t.includes(abortAt)) controller.abort();
  };
  const code = await main(argv, {
    progress: new Progress({ write, isTTY: false }),
    initBackend: false,
    print: (t) => write(t + '\n'),
    signal: controller.signal,
  });
  return { code, text: out.join('') };
}

describe('relign train', () => {
  const dir = mkdtempSync(join(tmpdir(), 'relign-train-'));

  beforeAll(async () => {
    await useBackend('cpu');
    registerPlugin(skippingPlugin as never);
    // The run's SFT and reward models, as the sft and reward stages leave them (untrained: plumbing only).
    const cfg = buildConfig({ preset: 'tiny', flags: new Map([['runDir', dir]]) });
    const run = new RunDir(dir);
    await run.claim();
    await run.track(async () => {
      const start = await loadStartingModel(cfg, run, await taskData(cfg));
      await saveModelDir(run.sftDir, start);
      const rm = RewardModel.fromBackbone(start.model, { tokenizer: start.tokenizer, seed: 'test/reward' });
      await rm.save(run.rewardDir);
      await saveTokenizer(start.tokenizer, run.rewardDir);
      rm.dispose();
    });
  });
  afterAll(() => {
    unregisterPlugin('skip-test');
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints the Trainer's warnings, also those of a resume, and keeps the last two checkpoints", async () => {
    const argv = [
      'train',
      '--preset',
      'tiny',
      '--run-dir',
      dir,
      '--algo',
      'skip-test',
      '--train.iterations',
      '3',
    ];
    // Ctrl-C after iteration 2 of 3.
    const first = await relign(argv, 'train skip-test: 2/3');
    expect(first.code, first.text).toBe(130);
    for (const step of [1, 2]) {
      expect(first.text).toMatch(
        new RegExp(`warning: train skip-test, iteration ${step}: .*skipped 1 optimizer step`),
      );
    }
    const steps = readdirSync(join(dir, 'train', 'skip-test', 'checkpoints')).filter((e) =>
      e.startsWith('step-'),
    );
    expect(steps).toHaveLength(2);

    // Resumed with another learning rate: the Trainer warns while it restores the checkpoint.
    const second = await relign([
      ...argv.filter((a) => a !== '--preset' && a !== 'tiny'),
      '--resume',
      '--train.algos',
      'skip-test',
      '--algos.skip-test.lr',
      '0.01',
    ]);
    expect(second.code, second.text).toBe(0);
    expect(second.text).toMatch(/warning: train skip-test, iteration 2: plugin config differs .*\blr\b/);
    expect(second.text).toMatch(/warning: train skip-test, iteration 3: .*skipped 1 optimizer step/);
  }, 120_000);
});
