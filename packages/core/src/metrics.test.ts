import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RolloutBatch } from '@relign/rollout';
import { meanKl, MetricsLog, rolloutMetrics, RunningStats } from './metrics.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('RunningStats', () => {
  it('matches the mean and population std of all values, for any split', () => {
    const values = [3, -1, 4, 1, -5, 9, 2, 6];
    const mean = values.reduce((a, v) => a + v, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
    for (const cut of [[8], [1, 7], [3, 2, 3]]) {
      const s = new RunningStats();
      let i = 0;
      for (const n of cut) s.push(values.slice(i, (i += n)));
      expect(s.mean).toBeCloseTo(mean, 12);
      expect(s.std).toBeCloseTo(std, 12);
      const r = RunningStats.fromJSON(JSON.parse(JSON.stringify(s)));
      expect([r.count, r.mean, r.m2]).toEqual([s.count, s.mean, s.m2]);
    }
    expect(() => RunningStats.fromJSON({ count: 1, mean: NaN, m2: 0 })).toThrow(
      "'mean' must be a finite number",
    );
  });
});

describe('rolloutMetrics', () => {
  // Spec T6 log-probs (§5.2): row 0 all three tokens, row 1 two; k1 sums −0.5 and 0.5 → objective/kl = 0.
  const batch = {
    batchSize: 2,
    responseWidth: 3,
    responseLengths: Int32Array.from([3, 2]),
    logprobs: Float32Array.from([-1, -0.5, -2, -1, -0.5, 0]),
    endedWithEos: Uint8Array.from([1, 0]),
  } as unknown as RolloutBatch;
  const ref = Float32Array.from([-1.5, -0.5, -1, -1.5, -0.5, 0]);
  it('computes reward, KL, entropy, length and EOS statistics', () => {
    const m = rolloutMetrics(batch, Float32Array.from([1, 3]), ref);
    expect(m).toEqual({
      'reward/mean': 2,
      'reward/std': 1,
      'objective/kl': 0,
      'objective/entropy': (3.5 + 1.5) / 2,
      'response/length_mean': 2.5,
      'response/eos_rate': 0.5,
    });
    expect(meanKl(batch, Float32Array.from([-1.5, -0.5, -1, -2, -1, 0]))).toBeCloseTo((-0.5 + 1.5) / 2, 6);
    expect(Object.keys(rolloutMetrics(batch, Float32Array.from([1, 3]), undefined, 'eval/'))).toEqual([
      'eval/reward/mean',
      'eval/reward/std',
      'eval/objective/entropy',
      'eval/response/length_mean',
      'eval/response/eos_rate',
    ]);
  });
});

describe('MetricsLog', () => {
  it('writes one JSON object per line, NaN as null, and drops later steps on resume', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relign-metrics-'));
    dirs.push(dir);
    const path = join(dir, 'sub', 'm.jsonl');
    const log = new MetricsLog(path);
    await log.start(0);
    for (const step of [1, 2, 3])
      await log.write({ 'train/step': step, 'loss/policy': step === 2 ? NaN : step });
    expect(await readFile(path, 'utf8')).toBe(
      '{"train/step":1,"loss/policy":1}\n{"train/step":2,"loss/policy":null}\n{"train/step":3,"loss/policy":3}\n',
    );
    await writeFile(path, (await readFile(path, 'utf8')) + 'garbage\n');
    const resumed = new MetricsLog(path);
    await resumed.start(2);
    await resumed.write({ 'train/step': 3, 'loss/policy': 30 });
    expect(
      (await readFile(path, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)['train/step']),
    ).toEqual([1, 2, 3]);
    await new MetricsLog(path).start(0);
    expect(await readFile(path, 'utf8')).toBe('');
  });
});
