/**
 * End to end: `relign run --preset tiny` through every stage in a temporary run directory, the layout it
 * writes, single-stage commands on the same directory, and resume after interrupted stages (SFT and an RL
 * run stopped by the abort signal, as Ctrl-C does) ending bit-identical to the uninterrupted run.
 *
 * wasm only: the pipeline is plumbing over packages whose tensor math is tested on both backends; the tiny
 * preset on the pure-JS cpu backend would take minutes.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@relign/tensor/testing';
import { main } from '../src/cli/main.js';
import { PRESETS } from '../src/config/presets.js';
import { readMetrics } from '../src/metrics-file.js';
import { Progress, type ProgressTask } from '../src/progress.js';
import type { StageRecord } from '../src/run-dir.js';

const ALGOS = ['ppo-max', 'dpo', 'p3o-v1', 'p3o-v2', 'grpo', 'rloo'];
const tiny = PRESETS.tiny;
const ITER = tiny.train!.iterations!;

/** Captures output; optionally aborts when a task reaches a step (a scripted Ctrl-C). */
class TestProgress extends Progress {
  readonly lines: string[] = [];
  constructor(private readonly stopAt?: { label: string; step: number; controller: AbortController }) {
    super({
      write: (t) =>
        void (t.endsWith('\n') ? (this as TestProgress).lines?.push(...t.trimEnd().split('\n')) : undefined),
      isTTY: false,
    });
  }
  override task(label: string, total: number, startAt = 0): ProgressTask {
    const task = super.task(label, total, startAt);
    const stop = this.stopAt;
    if (stop && label === stop.label) {
      const update = task.update.bind(task);
      task.update = (done, metrics) => {
        update(done, metrics);
        if (done >= stop.step) stop.controller.abort();
      };
    }
    return task;
  }
}

function stages(dir: string): StageRecord[] {
  return JSON.parse(readFileSync(join(dir, 'stages.json'), 'utf8')) as StageRecord[];
}

function json<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

async function relign(argv: string[], progress = new TestProgress(), signal = new AbortController().signal) {
  const printed: string[] = [];
  const code = await main(argv, { progress, signal, initBackend: false, print: (t) => void printed.push(t) });
  return { code, printed, lines: progress.lines };
}

describe('relign run --preset tiny (end to end)', () => {
  const root = mkdtempSync(join(tmpdir(), 'relign-e2e-'));
  const dir = join(root, 'full');

  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('runs every stage and writes the documented run directory', async () => {
    const { code, printed, lines } = await relign(['run', '--preset', 'tiny', '--run-dir', dir]);
    expect(code, [...printed, ...lines].join('\n')).toBe(0);

    const expected = [
      'sft',
      'label',
      'reward',
      ...ALGOS.map((a) => `train:${a}`),
      'eval',
      'frontier',
      'report',
    ];
    const recs = stages(dir);
    expect(recs.map((s) => s.stage)).toEqual(expected);
    for (const s of recs) {
      expect(s.status, s.stage).toBe('done');
      expect(s.seconds).toBeGreaterThanOrEqual(0);
    }
    // Stage timings are printed at the end.
    const table = lines.findIndex((l) => l === 'stage timings:');
    expect(table).toBeGreaterThan(0);
    for (const s of expected) expect(lines.slice(table).some((l) => l.trim().startsWith(s))).toBe(true);

    // Effective config, validated and complete.
    const cfg = json<{ preset: string; sft: { steps: number }; train: { algos: string[] } }>(
      join(dir, 'config.json'),
    );
    expect(cfg.preset).toBe('tiny');
    expect(cfg.sft.steps).toBe(tiny.sft!.steps);
    expect(cfg.train.algos).toEqual(ALGOS);

    // SFT: a model directory and one metrics line per step.
    for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt'])
      expect(existsSync(join(dir, 'sft', f)), f).toBe(true);
    expect(readMetrics(join(dir, 'sft', 'metrics.jsonl')).map((m) => m.step)).toEqual(
      Array.from({ length: tiny.sft!.steps! }, (_, i) => i + 1),
    );
    expect(existsSync(join(dir, 'sft', 'checkpoints'))).toBe(false);

    // Labels: TRL-format pairs with distinct responses.
    const pairs = readFileSync(join(dir, 'labels', 'pairs.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    const labelStats = json<{ pairs: number; prompts: number; identical: number; indifferent: number }>(
      join(dir, 'labels', 'stats.json'),
    );
    expect(pairs).toHaveLength(labelStats.pairs);
    expect(labelStats.pairs).toBeGreaterThan(4);
    expect(labelStats.pairs + labelStats.identical + labelStats.indifferent).toBe(tiny.label!.prompts);
    for (const p of pairs) {
      expect(Object.keys(p).sort()).toEqual(['chosen', 'prompt', 'rejected']);
      expect(p.chosen).not.toBe(p.rejected);
    }

    // Reward model: a directory and its checks against held-out pairs and human labels.
    const rmEval = json<Record<string, number | null>>(join(dir, 'reward', 'eval.json'));
    for (const k of ['heldOutAccuracy', 'humanAccuracy', 'humanPairAccuracy']) {
      expect(rmEval[k], k).toBeGreaterThanOrEqual(0);
      expect(rmEval[k], k).toBeLessThanOrEqual(1);
    }
    expect(rmEval.humanSentences).toBeGreaterThan(100);
    expect(existsSync(join(dir, 'reward', 'model.safetensors'))).toBe(true);

    // Each optimizer: metrics per iteration, checkpoints, snapshots, final policy, result.
    for (const algo of ALGOS) {
      const t = join(dir, 'train', algo);
      const m = readMetrics(join(t, 'metrics.jsonl'));
      expect(
        m.map((x) => x['train/step']),
        algo,
      ).toEqual(Array.from({ length: ITER }, (_, i) => i + 1));
      for (const x of m) expect(typeof x['reward/mean']).toBe('number');
      expect(existsSync(join(t, 'checkpoints', 'latest.json')), algo).toBe(true);
      expect(existsSync(join(t, 'final', 'model.safetensors')), algo).toBe(true);
      expect(existsSync(join(t, 'evalpoints', 'step-1', 'model.safetensors')), algo).toBe(true);
      const r = json<{
        algo: string;
        iterations: number;
        stopped: string;
        pluginConfig: Record<string, unknown>;
      }>(join(t, 'result.json'));
      expect(r).toMatchObject({ algo, iterations: ITER, stopped: 'completed' });
      // The preset's plugin settings reached the plugin (and were completed with its defaults).
      expect(r.pluginConfig.lr).toBe(tiny.algos![algo]!.lr);
      expect(Object.keys(r.pluginConfig).length).toBeGreaterThan(3);
    }

    // Evaluations: SFT, each final policy and each snapshot; samples per prompt.
    const evalNames = readdirSync(join(dir, 'eval'))
      .map((f) => f.replace(/\.json$/, ''))
      .sort();
    expect(evalNames).toEqual(['sft', ...ALGOS.flatMap((a) => [a, `${a}-step-1`])].sort());
    const sftEval = json<{ klToSft: { mean: number }; n: number }>(join(dir, 'eval', 'sft.json'));
    expect(sftEval.klToSft.mean).toBe(0);
    expect(sftEval.n).toBe(tiny.data!.evalPrompts);
    for (const algo of ALGOS) {
      const e = json<{
        step: number;
        klCoef: number;
        winRates: { vsSft: { proxy: number }; headToHead: Record<string, unknown> };
      }>(join(dir, 'eval', `${algo}.json`));
      expect(e.step).toBe(ITER);
      expect(e.klCoef).toBe(0.05);
      // Head to head against SFT and the three other optimizers.
      expect(Object.keys(e.winRates.headToHead).sort()).toEqual(
        ['sft', ...ALGOS.filter((a) => a !== algo)].sort(),
      );
      const samples = readFileSync(join(dir, 'samples', `${algo}.jsonl`), 'utf8')
        .trim()
        .split('\n');
      expect(samples).toHaveLength(tiny.data!.evalPrompts!);
    }

    // Frontier: one point per evaluation; report: one self-contained HTML file.
    const frontier = json<{ points: { algo: string; step: number }[] }>(
      join(dir, 'frontier', 'frontier.json'),
    );
    expect(frontier.points).toHaveLength(evalNames.length);
    expect(new Set(frontier.points.map((p) => p.algo))).toEqual(new Set(['sft', ...ALGOS]));
    const html = readFileSync(join(dir, 'report', 'report.html'), 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/);
  });

  it('single-stage commands reuse the saved config: generate, report, and config errors', async () => {
    const gen = await relign([
      'generate',
      '--run-dir',
      dir,
      '--model',
      'p3o-v2',
      '--prompt',
      'The food was',
      '--prompt',
      'I',
      '--n',
      '2',
    ]);
    expect(gen.code, gen.printed.join('\n')).toBe(0);
    expect(gen.printed[0]).toBe(`# ${join(dir, 'train', 'p3o-v2', 'final')}`);
    expect(gen.printed.slice(1).map((l) => l.split(' ⟶')[0])).toEqual([
      'The food was',
      'The food was',
      'I',
      'I',
    ]);
    expect(gen.lines.some((l) => l.startsWith("using the run's saved config"))).toBe(true);

    const snap = await relign([
      'generate',
      '--run-dir',
      dir,
      '--model',
      'dpo-step-1',
      '--max-new-tokens',
      '4',
    ]);
    expect(snap.code).toBe(0);
    expect(snap.printed[0]).toContain(join('dpo', 'evalpoints', 'step-1'));

    const missing = await relign(['generate', '--run-dir', dir, '--model', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.printed.join('\n')).toMatch(/no model 'nope'/);

    const report = await relign(['report', '--run-dir', dir]);
    expect(report.code).toBe(0);
    expect(stages(dir).find((s) => s.stage === 'report')?.status).toBe('done');

    const bad = await relign(['sft', '--run-dir', dir, '--sft.steps', 'many', '--sft.lrr', '1']);
    expect(bad.code).toBe(2);
    expect(bad.printed.join('\n')).toMatch(/sft\.steps must be a whole number \(got 'many'\)/);
    expect(bad.printed.join('\n')).toMatch(/unknown key 'sft\.lrr' \(did you mean 'sft\.lr'\?\)/);

    const needs = await relign(['reward', '--preset', 'tiny', '--run-dir', join(root, 'empty')]);
    expect(needs.code).toBe(1);
    expect(needs.printed.join('\n')).toMatch(/pairs\.jsonl is missing: run `relign label` first/);

    // Starting models: the run's own pretrain stage, and any model directory.
    const pdir = join(root, 'pretrained');
    const pre = await relign(['pretrain', '--preset', 'tiny', '--run-dir', pdir]);
    expect(pre.code, pre.printed.join('\n')).toBe(0);
    expect(existsSync(join(pdir, 'pretrain', 'training.json'))).toBe(true);
    const fromPre = await relign(['sft', '--run-dir', pdir, '--model.base', 'pretrain', '--sft.steps', '2']);
    expect(fromPre.code, fromPre.printed.join('\n')).toBe(0);
    const sftResult = json<{ base: { source: string }; steps: number }>(join(pdir, 'sft', 'result.json'));
    expect(sftResult).toMatchObject({ base: { source: 'pretrain' }, steps: 2 });
    expect(json<{ vocab_size: number }>(join(pdir, 'sft', 'config.json')).vocab_size).toBe(
      tiny.pretrain!.vocabSize,
    );
    const qdir = join(root, 'from-dir');
    const fromDir = await relign([
      'sft',
      '--preset',
      'tiny',
      '--run-dir',
      qdir,
      '--model.base',
      join(dir, 'sft'),
      '--sft.steps',
      '1',
    ]);
    expect(fromDir.code, fromDir.printed.join('\n')).toBe(0);
    expect(json<{ base: { dir: string } }>(join(qdir, 'sft', 'result.json')).base.dir).toBe(join(dir, 'sft'));
    const noDir = await relign([
      'sft',
      '--preset',
      'tiny',
      '--run-dir',
      qdir,
      '--model.base',
      join(root, 'nowhere'),
    ]);
    expect(noDir.code).toBe(2); // checked before the stage starts
    expect(noDir.printed.join('\n')).toMatch(/model\.base: .*nowhere does not exist/);

    // A frontier sweep: one extra run per optimizer at another KL coefficient, evaluated and collected.
    const sweep = await relign(['frontier', '--run-dir', dir, '--frontier.klCoefs', '0.2']);
    expect(sweep.code, sweep.printed.join('\n')).toBe(0);
    for (const algo of ALGOS) {
      const name = `${algo}-kl0.2-s0`;
      const r = json<{ klCoef: number; pluginConfig: Record<string, unknown> }>(
        join(dir, 'train', name, 'result.json'),
      );
      expect(r.klCoef).toBe(0.2);
      if (algo === 'dpo') expect(r.pluginConfig.beta).toBe(0.2); // DPO's β is its KL coefficient
      expect(json<{ klCoef: number; algo: string }>(join(dir, 'eval', `${name}.json`))).toMatchObject({
        klCoef: 0.2,
        algo,
      });
    }
    const swept = json<{ points: { algo: string; klCoef?: number }[] }>(
      join(dir, 'frontier', 'frontier.json'),
    );
    expect(swept.points).toHaveLength(1 + 2 * 2 * ALGOS.length);
    expect(swept.points.filter((p) => p.klCoef === 0.2)).toHaveLength(2 * ALGOS.length);

    const noAlgo = await relign(['train', '--run-dir', dir, '--algo', 'p4o']);
    expect(noAlgo.code).toBe(1);
    expect(noAlgo.printed.join('\n')).toMatch(/resolvePlugin\('p4o'\): no plugin of that name/);
    expect(json<{ train: { algos: string[] } }>(join(dir, 'config.json')).train.algos).toEqual(ALGOS);

    const unknown = await relign(['trian']);
    expect(unknown.code).toBe(2);
    expect(unknown.printed[0]).toMatch(/unknown command 'trian'/);
  });

  it('resumes after interrupted stages and ends bit-identical to the uninterrupted run', async () => {
    const rdir = join(root, 'resumed');
    const algos = 'ppo-max,p3o-v1';
    // 1. Ctrl-C during SFT, after step 7 of 12 (the last periodic checkpoint was step 6). The train stages run
    // in this process (train.parallel 1), where the scripted Ctrl-C sees their progress; the concurrent path
    // is tested in parallel-train.test.ts.
    const c1 = new AbortController();
    const r1 = await relign(
      ['run', '--preset', 'tiny', '--run-dir', rdir, '--train.algos', algos, '--train.parallel', '1'],
      new TestProgress({ label: 'sft', step: 7, controller: c1 }),
      c1.signal,
    );
    expect(r1.code, r1.printed.join('\n')).toBe(130);
    expect(r1.printed.join('\n')).toMatch(
      /sft interrupted \(at step 7\); its checkpoint is saved\. Continue with: relign run --resume --run-dir /,
    );
    expect(stages(rdir)).toEqual([expect.objectContaining({ stage: 'sft', status: 'interrupted' })]);
    expect(existsSync(join(rdir, 'sft', 'checkpoints', 'latest.json'))).toBe(true);

    // 2. Resume; Ctrl-C again in the p3o-v1 run after its first iteration.
    const c2 = new AbortController();
    const r2 = await relign(
      ['run', '--resume', '--run-dir', rdir],
      new TestProgress({ label: 'train p3o-v1', step: 1, controller: c2 }),
      c2.signal,
    );
    expect(r2.code, r2.printed.join('\n')).toBe(130);
    expect(r2.lines.some((l) => l.startsWith("using the run's saved config"))).toBe(true);
    expect(stages(rdir).map((s) => [s.stage, s.status])).toEqual([
      ['sft', 'done'],
      ['label', 'done'],
      ['reward', 'done'],
      ['train:ppo-max', 'done'],
      ['train:p3o-v1', 'interrupted'],
    ]);
    expect(stages(rdir)[0]!.previousSeconds).toBeGreaterThan(0);

    // 3. Resume to the end: finished stages are skipped, the RL run continues at iteration 1.
    const r3 = await relign(['run', '--resume', '--run-dir', rdir]);
    expect(r3.code, r3.printed.join('\n')).toBe(0);
    for (const s of ['sft', 'label', 'reward', 'train:ppo-max']) {
      expect(
        r3.lines.some((l) => l.startsWith(`== ${s}: done before (`) && l.endsWith('), skipped')),
        s,
      ).toBe(true);
    }
    expect(r3.lines.some((l) => l.includes('p3o-v1: resuming at iteration 1/2'))).toBe(true);
    expect(stages(rdir).every((s) => s.status === 'done')).toBe(true);

    // Each step appears once in the metrics of the interrupted stages.
    expect(readMetrics(join(rdir, 'sft', 'metrics.jsonl')).map((m) => m.step)).toEqual(
      Array.from({ length: tiny.sft!.steps! }, (_, i) => i + 1),
    );
    expect(readMetrics(join(rdir, 'train', 'p3o-v1', 'metrics.jsonl')).map((m) => m['train/step'])).toEqual([
      1, 2,
    ]);

    // Same weights as the uninterrupted run of the first test (same config, seed and backend).
    const bytes = (d: string, ...p: string[]) => readFileSync(join(d, ...p, 'model.safetensors'));
    expect(bytes(rdir, 'sft').equals(bytes(dir, 'sft'))).toBe(true);
    expect(bytes(rdir, 'train', 'p3o-v1', 'final').equals(bytes(dir, 'train', 'p3o-v1', 'final'))).toBe(true);
    expect(bytes(rdir, 'train', 'ppo-max', 'final').equals(bytes(dir, 'train', 'ppo-max', 'final'))).toBe(
      true,
    );
  });
});
