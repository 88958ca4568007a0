/**
 * `train.parallel`: the plan (how many train stages at once, RELIGN_THREADS each), the config key, and the
 * stage table of a run whose train stages ran concurrently. The runs themselves are tested end to end in
 * test/parallel-train.test.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { definePlugin, registerPlugin, unregisterPlugin } from '@relign/core';
import { reinforcePlugin } from '@relign/core/testing';
import { useBackend } from '@relign/tensor/testing';
import { helpText, main } from './cli/main.js';
import { buildConfig } from './config/load.js';
import { ConfigError } from './config/validate.js';
import { formatStageTimes } from './pipeline.js';
import { loadRunData, renderReport } from './report/index.js';
import { Progress } from './progress.js';
import type { StageRecord } from './run-dir.js';
import { planTrainParallel } from './train-parallel.js';

const plan = (o: Partial<Parameters<typeof planTrainParallel>[0]>) =>
  planTrainParallel({ setting: 'auto', stages: 6, backend: 'wasm', cores: 2, ...o });

describe('planTrainParallel', () => {
  it('auto: one stage per core (or per RELIGN_THREADS) on a CPU backend, the threads split between them', () => {
    expect(plan({})).toMatchObject({ concurrent: 2, threadsPerStage: 1 });
    expect(plan({ cores: 16 })).toMatchObject({ concurrent: 6, threadsPerStage: 2 });
    expect(plan({ cores: 16, stages: 2 })).toMatchObject({ concurrent: 2, threadsPerStage: 8 });
    expect(plan({ cores: 1 })).toMatchObject({ concurrent: 1, threadsPerStage: 1 });
    expect(plan({ backend: 'cpu', cores: 4 })).toMatchObject({ concurrent: 4, threadsPerStage: 1 });
    // RELIGN_THREADS is the budget of the whole run.
    expect(plan({ cores: 16, threadsEnv: '4' })).toMatchObject({ concurrent: 4, threadsPerStage: 1 });
    expect(plan({ cores: 16, threadsEnv: '1' })).toMatchObject({ concurrent: 1 });
    expect(plan({ cores: 16, threadsEnv: '4' }).why).toBe('train.parallel auto: RELIGN_THREADS=4');
  });

  it('auto: one at a time on a GPU backend, and no more than free memory holds', () => {
    expect(plan({ backend: 'webgpu', cores: 16 })).toMatchObject({ concurrent: 1, threadsPerStage: 16 });
    expect(plan({ backend: 'tensorflow', cores: 16 }).concurrent).toBe(1);
    const gib = 2 ** 30;
    const tight = plan({ cores: 16, freeBytes: 7 * gib, stageBytes: 2 * gib });
    expect(tight).toMatchObject({ concurrent: 3, threadsPerStage: 5 });
    expect(tight.why).toBe('train.parallel auto: 16 cores, free memory for 3 at a time');
    expect(plan({ cores: 16, freeBytes: gib, stageBytes: 2 * gib }).concurrent).toBe(1);
  });

  it('a number is taken as asked (at most one per stage), on any backend', () => {
    expect(plan({ setting: '3', cores: 2 })).toMatchObject({ concurrent: 3, threadsPerStage: 1 });
    expect(plan({ setting: '4', backend: 'webgpu', cores: 8 })).toMatchObject({
      concurrent: 4,
      threadsPerStage: 2,
    });
    expect(plan({ setting: '8', stages: 3 }).concurrent).toBe(3);
    expect(plan({ setting: '1', cores: 16 })).toMatchObject({ concurrent: 1, threadsPerStage: 16 });
  });
});

describe('train.parallel', () => {
  it("is 'auto' by default, takes a whole number (flag or YAML number), and names the fix otherwise", () => {
    expect(buildConfig({ preset: 'demo' }).train.parallel).toBe('auto');
    expect(buildConfig({ flags: new Map([['train.parallel', '3']]) }).train.parallel).toBe('3');
    expect(buildConfig({ config: { train: { parallel: 2 } } }).train.parallel).toBe('2');
    for (const bad of ['0', 'two', '1.5']) {
      let err: unknown;
      try {
        buildConfig({ flags: new Map([['train.parallel', bad]]) });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([
        `train.parallel must be 'auto' or a whole number >= 1 (got '${bad}'): train stages run at once`,
      ]);
    }
  });

  it('is listed by `relign help config`', () => {
    expect(helpText('config')).toMatch(
      /^ {2}train\.parallel +string +default auto: train stages run at once/m,
    );
  });

  it('eval.parallel: listed too, and takes the same values', () => {
    expect(helpText('config')).toMatch(
      /^ {2}eval\.parallel +string +default auto: policies evaluated at once/m,
    );
    expect(buildConfig({ config: { eval: { parallel: 4 } } }).eval.parallel).toBe('4');
    expect(() => buildConfig({ flags: new Map([['eval.parallel', 'all']]) })).toThrow(
      "eval.parallel must be 'auto' or a whole number >= 1 (got 'all'): policies evaluated at once",
    );
  });
});

describe('formatStageTimes', () => {
  const rec = (stage: string, start: number, seconds: number, parallel?: number): StageRecord => ({
    stage,
    status: 'done',
    startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, start)).toISOString(),
    seconds,
    ...(parallel ? { parallel } : {}),
  });

  it('sums the stages of a sequential run, as before', () => {
    expect(formatStageTimes([rec('sft', 0, 60), rec('train:dpo', 60, 30)]).split('\n')).toEqual([
      'stage timings:',
      '  sft                  1m00s  done',
      '  train:dpo              30s  done',
      '  total                1m30s',
    ]);
  });

  const overlapping = [
    rec('sft', 0, 60),
    rec('train:grpo', 60, 100, 2),
    rec('train:dpo', 60, 50, 2),
    rec('train:rloo', 110, 40, 2),
    { ...rec('eval', 160, 20), previousSeconds: 5 },
  ];

  it('gives the wall clock when train stages overlapped, and what their times add up to', () => {
    const text = formatStageTimes(overlapping);
    expect(text).toContain('  train:grpo           1m40s  done, 2 at a time');
    // 60 + 100 (the train stages overlap) + 20 + 5 earlier = 3m05s; the stages add up to 4m35s.
    expect(text.split('\n').at(-1)).toBe(
      "  total                3m05s  wall clock (the stages' times add up to 4m35s)",
    );
  });

  it("the report's stage table says the same", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relign-parallel-report-'));
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'stages.json'), JSON.stringify(overlapping));
      const html = renderReport(await loadRunData(dir));
      expect(html).toContain('done, 2 at a time');
      expect(html).toMatch(
        /wall clock \(the stages’ times add up to 4 min 35 s\)<\/td><td><b>3 min 05 s<\/b>/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a plugin registered only in this process', () => {
  const root = mkdtempSync(join(tmpdir(), 'relign-parallel-local-'));
  afterAll(() => {
    unregisterPlugin('local-test');
    rmSync(root, { recursive: true, force: true });
  });

  it('trains in-process after the stages in child processes (which cannot load it)', async () => {
    await useBackend('wasm');
    registerPlugin(definePlugin({ ...reinforcePlugin, name: 'local-test' }) as never);
    const dir = join(root, 'run');
    const out: string[] = [];
    const code = await main(
      [
        'run',
        '--preset',
        'tiny',
        '--run-dir',
        dir,
        '--train.algos',
        'local-test,dpo,rloo',
        '--train.parallel',
        '2',
        '--eval.parallel',
        '1',
      ],
      {
        progress: new Progress({ write: (t) => void out.push(t), isTTY: false }),
        initBackend: false,
        print: (t) => void out.push(t + '\n'),
      },
    );
    const text = out.join('');
    expect(code, text).toBe(0);
    expect(text).toContain('== 2 train stages, 2 at a time in child processes (train.parallel 2;');
    // dpo and rloo in children ([algo] lines), then local-test here (no prefix), stages.json in config order.
    expect(text).toMatch(/^\[rloo\] train rloo: 2\/2/m);
    expect(text).toMatch(/^train local-test: 2\/2/m);
    expect(text.indexOf('== train:local-test')).toBeGreaterThan(text.indexOf('== train:rloo'));
    const stages = JSON.parse(readFileSync(join(dir, 'stages.json'), 'utf8')) as StageRecord[];
    expect(
      stages.filter((s) => s.stage.startsWith('train:')).map((s) => [s.stage, s.status, s.parallel]),
    ).toEqual([
      ['train:local-test', 'done', undefined],
      ['train:dpo', 'done', 2],
      ['train:rloo', 'done', 2],
    ]);
  });
});
