import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { computeFrontier, frontierPoints, paretoFront } from './frontier.js';
import { writeEvaluation } from './run-files.js';
import { fakeResult } from './test-fixtures.js';

describe('paretoFront', () => {
  it('keeps the points no other point beats at a lower or equal KL', () => {
    const pts = [
      { kl: 0, r: 0 },
      { kl: 1, r: 2 },
      { kl: 2, r: 1 }, // beaten by (1, 2)
      { kl: 3, r: 3 },
      { kl: 3, r: 2.5 }, // same KL, lower reward
      { kl: 0.5, r: -1 }, // beaten by (0, 0)
    ];
    expect(paretoFront(pts, (p) => p.r)).toEqual([
      { kl: 0, r: 0 },
      { kl: 1, r: 2 },
      { kl: 3, r: 3 },
    ]);
    expect(paretoFront([], (p: { kl: number }) => p.kl)).toEqual([]);
  });
});

describe('frontierPoints / computeFrontier', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('orders SFT first, then by algo and step, and carries klCoef/seed', () => {
    const r = fakeResult('p3o-v1-step-4', 'p3o-v1', 4, 2, 1);
    r.klCoef = 0.05;
    r.seed = 1;
    const pts = frontierPoints([
      fakeResult('dpo', 'dpo', 8, 3, 2),
      r,
      fakeResult('sft', 'sft', 0, 0, 0),
      fakeResult('dpo-step-4', 'dpo', 4, 1, 1),
    ]);
    expect(pts.map((p) => p.name)).toEqual(['sft', 'dpo-step-4', 'dpo', 'p3o-v1-step-4']);
    expect(pts[3]).toEqual({
      name: 'p3o-v1-step-4',
      algo: 'p3o-v1',
      step: 4,
      klCoef: 0.05,
      seed: 1,
      kl: 2,
      klStd: 0.1,
      proxy: 1,
      gold: 0.5,
      judge: 0.25,
    });
  });

  it('collects eval/*.json into frontier/frontier.json', async () => {
    dir = await mkdtemp(join(tmpdir(), 'relign-frontier-'));
    expect((await computeFrontier(dir)).points).toEqual([]);
    await writeEvaluation(dir, { result: fakeResult('sft', 'sft', 0, 0, 0.1), samples: [] });
    await writeEvaluation(dir, { result: fakeResult('ppo-max', 'ppo-max', 10, 4.5, 0.9), samples: [] });
    const f = await computeFrontier(dir);
    expect(f.points.map((p) => [p.algo, p.kl, p.proxy])).toEqual([
      ['sft', 0, 0.1],
      ['ppo-max', 4.5, 0.9],
    ]);
    expect(JSON.parse(await readFile(join(dir, 'frontier', 'frontier.json'), 'utf8'))).toEqual(f);
  });
});
