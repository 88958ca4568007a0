/**
 * `relign run --task arithmetic --preset tiny`: every stage, every first-party optimizer (GRPO and RLOO
 * included) trained on the checkable reward, and held-out accuracy written for the SFT model and each policy,
 * and charted against KL in the report. Plumbing only (two iterations): whether GRPO lifts held-out accuracy
 * is measured in the README (not yet). wasm, like the other end-to-end test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@relign/tensor/testing';
import { main } from '../cli/main.js';
import { FIRST_PARTY_ALGOS } from '../config/schema.js';
import type { EvalResult } from '../eval/types.js';
import { Progress } from '../progress.js';

const json = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

describe('relign run --task arithmetic', () => {
  const root = mkdtempSync(join(tmpdir(), 'relign-arith-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('runs every optimizer on the checkable reward and writes held-out accuracy', async () => {
    const dir = join(root, 'run');
    const lines: string[] = [];
    const code = await main(['run', '--task', 'arithmetic', '--preset', 'tiny', '--run-dir', dir], {
      progress: new Progress({ write: (t) => void lines.push(t), isTTY: false }),
      initBackend: false,
      print: (t) => void lines.push(t),
    });
    expect(code, lines.join('')).toBe(0);
    expect(FIRST_PARTY_ALGOS).toEqual(['ppo-max', 'dpo', 'p3o-v1', 'p3o-v2', 'grpo', 'rloo']);
    const stages = json<{ stage: string; status: string }[]>(join(dir, 'stages.json'));
    expect(stages.map((s) => s.stage)).toEqual([
      'sft',
      'label',
      'reward',
      ...FIRST_PARTY_ALGOS.map((a) => `train:${a}`),
      'eval',
      'frontier',
      'report',
    ]);
    expect(stages.every((s) => s.status === 'done')).toBe(true);
    const cfg = json<{ task: string; train: { maxNewTokens: number } }>(join(dir, 'config.json'));
    expect(cfg.task).toBe('arithmetic');

    // Labels come from the checkable reward.
    expect(json<{ labeler: string }>(join(dir, 'labels', 'stats.json')).labeler).toBe('arithmetic');
    const rm = json<{ labelers: { gold: { name: string; humanAccuracy: number } } }>(
      join(dir, 'reward', 'eval.json'),
    );
    // The gold labeler knows the answers: it tells every right answer from its near miss.
    expect(rm.labelers.gold).toEqual({ name: 'gold:accuracy', humanAccuracy: 1, humanPairAccuracy: 1 });

    // Accuracy (gold) of SFT and of every optimizer's final policy, on the held-out problems.
    for (const name of ['sft', ...FIRST_PARTY_ALGOS]) {
      const r = json<EvalResult>(join(dir, 'eval', `${name}.json`));
      expect(r.n, name).toBe(12);
      expect(r.gold.mean, name).toBeGreaterThanOrEqual(0);
      expect(r.gold.mean, name).toBeLessThanOrEqual(1);
      // Gold is the greedy answers' accuracy; the sampled answers' is kept beside it.
      expect(r.goldSampled?.mean, name).toBeGreaterThanOrEqual(0);
      // Every gold score is an accuracy: 0 or 1 per sample.
      const samples = readFileSync(join(dir, 'samples', `${name}.jsonl`), 'utf8')
        .trim()
        .split('\n');
      for (const line of samples) expect([0, 1]).toContain((JSON.parse(line) as { gold: number }).gold);
    }
    // The training reward was the checkable one: the metrics' reward is a mean of 0/1 scores.
    for (const algo of FIRST_PARTY_ALGOS) {
      const metrics = readFileSync(join(dir, 'train', algo, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n');
      for (const line of metrics) {
        const m = JSON.parse(line) as Record<string, number>;
        expect(m['reward/mean'], algo).toBeGreaterThanOrEqual(0);
        expect(m['reward/mean'], algo).toBeLessThanOrEqual(1);
      }
    }
    const report = readFileSync(join(dir, 'report', 'report.html'), 'utf8');
    expect(report).toContain('Held-out accuracy vs KL');
    for (const algo of FIRST_PARTY_ALGOS) expect(report).toContain(algo);
    expect(lines.join('')).toMatch(
      /grpo\s+held-out accuracy \d\.\d{3} greedy \(SFT \d\.\d{3}\), \d\.\d{3} sampled \(SFT \d\.\d{3}\)/,
    );
  }, 600_000);
});
