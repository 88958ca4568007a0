import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addHeadToHead, updateHeadToHead } from './head-to-head.js';
import { fakeResult } from './test-fixtures.js';
import { readEvalResults, readSamples, writeEvaluation } from './run-files.js';
import type { Evaluation, SampleRecord } from './types.js';

function samples(proxy: number[], judge: number[]): SampleRecord[] {
  return proxy.map((p, i) => ({
    prompt: `p${i}`,
    response: 'r',
    gold: 0,
    judge: judge[i]!,
    proxy: p,
    kl: 0,
    length: 1,
    eos: true,
  }));
}

function evaluation(name: string, proxy: number[], judge: number[]): Evaluation {
  return {
    result: fakeResult(name, name.replace(/-step-\d+$/, ''), 0, 0, 0),
    samples: samples(proxy, judge),
  };
}

describe('addHeadToHead', () => {
  it('fills hand-computed win rates for every pair (ties ½)', () => {
    const a = evaluation('a', [1, 2, 3, 4], [0, 0, 1, 1]);
    const b = evaluation('b', [0, 2, 5, 4], [0, 1, 0, 1]);
    const c = evaluation('c', [9, 9, 9, 9], [0, 0, 1, 1]);
    addHeadToHead([a, b, c]);
    // a vs b by proxy: win, tie, loss, tie = 2/4; by judge: tie, loss, win, tie = 2/4.
    expect(a.result.winRates.headToHead).toEqual({
      b: { proxy: 0.5, judge: 0.5 },
      c: { proxy: 0, judge: 0.5 },
    });
    expect(c.result.winRates.headToHead!['a']).toEqual({ proxy: 1, judge: 0.5 });
    // c vs b by judge: tie, loss, win, tie.
    expect(c.result.winRates.headToHead!['b']).toEqual({ proxy: 1, judge: 0.5 });
    expect(b.result.winRates.vsSft).toEqual({ proxy: 0.5, judge: 0.5 }); // untouched
  });
  it('rejects different prompts and repeated names', () => {
    const a = evaluation('a', [1, 2], [0, 0]);
    const b = evaluation('b', [1, 2], [0, 0]);
    b.samples[1]!.prompt = 'other';
    expect(() => addHeadToHead([a, b])).toThrow(/prompt 1 of "a" \("p1"\) differs from "b"'s \("other"\)/);
    expect(() => addHeadToHead([a, evaluation('b', [1], [1])])).toThrow(/"a" has 2 samples and "b" has 1/);
    expect(() => addHeadToHead([a, a])).toThrow(/appears twice/);
  });
});

describe('updateHeadToHead (run directory)', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  it('compares the final evaluations (not step checkpoints) and writes them back', async () => {
    dir = await mkdtemp(join(tmpdir(), 'relign-h2h-'));
    await writeEvaluation(dir, evaluation('sft', [0, 0], [0, 0]));
    await writeEvaluation(dir, evaluation('dpo', [1, 0], [0, -1]));
    await writeEvaluation(dir, evaluation('dpo-step-2', [5, 5], [5, 5]));
    expect(await readSamples(dir, 'dpo')).toEqual(samples([1, 0], [0, -1]));
    expect(await readSamples(dir, 'none')).toBeUndefined();
    const results = await updateHeadToHead(dir);
    expect(results.map((r) => r.name).sort()).toEqual(['dpo', 'sft']);
    const onDisk = await readEvalResults(dir);
    expect(onDisk.find((r) => r.name === 'dpo')!.winRates.headToHead).toEqual({
      sft: { proxy: 0.75, judge: 0.25 },
    });
    expect(onDisk.find((r) => r.name === 'dpo-step-2')!.winRates.headToHead).toBeUndefined();
    await expect(updateHeadToHead(dir, ['sft', 'ppo-max'])).rejects.toThrow(
      /eval\/ppo-max.json does not exist/,
    );
    await writeFile(join(dir, 'eval', 'bad.json'), '{"name": 1}');
    await expect(readEvalResults(dir)).rejects.toThrow(/bad.json: field "name" must be a string/);
  });
});
