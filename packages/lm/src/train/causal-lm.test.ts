import { useBackend } from '@relign/tensor/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenizePromptCompletion } from '../data/tokenize.js';
import { charTokenizer, snapshot, TINY_DATA, tinyModel } from '../sft/test-fixtures.js';
import { trainCausalLM, type TrainMetrics } from './causal-lm.js';

describe('trainCausalLM (cpu)', () => {
  beforeAll(() => useBackend('cpu'));
  const { examples } = tokenizePromptCompletion(TINY_DATA, charTokenizer, { maxLength: 16 });

  it('a time budget fixes the step count after warm-up; maxSteps = that count reproduces the run', async () => {
    const timed = tinyModel(2);
    const lrs: number[] = [];
    const r = await trainCausalLM(timed, examples, examples.slice(0, 2), {
      batchSize: 2,
      padId: 0,
      lr: 1e-2,
      warmupSteps: 4,
      maxSeconds: 1.5,
      evalEvery: 10,
      seed: 1,
      onMetrics: (m) => lrs.push(m['train/lr']),
    });
    expect(r.totalSteps).toBeGreaterThan(4);
    expect(r.steps).toBe(r.totalSteps);
    expect(r.seconds).toBeLessThan(5); // 1.5 s budget; generous for a loaded machine
    expect(lrs.slice(0, 4)).toEqual([2.5e-3, 5e-3, 7.5e-3, 1e-2].map((x) => expect.closeTo(x, 12)));
    expect(lrs[lrs.length - 1]).toBeCloseTo(
      1e-3 + 0.5 * 9e-3 * (1 + Math.cos((Math.PI * (r.totalSteps - 5)) / (r.totalSteps - 4))),
      10,
    );

    const fixed = tinyModel(2);
    const r2 = await trainCausalLM(fixed, examples, examples.slice(0, 2), {
      batchSize: 2,
      padId: 0,
      lr: 1e-2,
      warmupSteps: 4,
      maxSteps: r.totalSteps,
      evalEvery: 10,
      seed: 1,
    });
    expect(r2.evalLoss).toBe(r.evalLoss);
    const a = snapshot(timed);
    const b = snapshot(fixed);
    for (const [name, x] of a) expect(Array.from(b.get(name)!), name).toEqual(Array.from(x));
    timed.dispose();
    fixed.dispose();
  });

  it('visits every example once per epoch, in a seeded order, with a smaller last batch', async () => {
    const model = tinyModel(2);
    const seen: TrainMetrics[] = [];
    // 6 examples, batch 4: epochs of 2 steps (4 + 2 examples).
    const r = await trainCausalLM(model, examples, [], {
      batchSize: 4,
      padId: 0,
      lr: 1e-3,
      epochs: 2,
      onMetrics: (m) => seen.push(m),
    });
    expect(r.steps).toBe(4);
    expect(seen.map((m) => m.epoch)).toEqual([0, 0, 1, 1]);
    const tokens = examples.reduce((n, e) => n + e.length, 0);
    expect(r.tokensSeen).toBe(2 * tokens);
    expect(Number.isNaN(r.evalLoss)).toBe(true);
    model.dispose();
  });

  it('validates its options with actionable messages', async () => {
    const model = tinyModel(2);
    const base = { batchSize: 2, padId: 0, lr: 1e-3 };
    await expect(trainCausalLM(model, examples, [], base)).rejects.toThrow(
      /give maxSteps, epochs or maxSeconds/,
    );
    await expect(
      trainCausalLM(model, examples, [], { ...base, maxSeconds: 5, warmupSteps: 1 }),
    ).rejects.toThrow(/maxSeconds needs warmupSteps >= 3/);
    await expect(
      trainCausalLM(model, examples, [], { ...base, maxSteps: 2, warmupSteps: 3 }),
    ).rejects.toThrow(/warmupSteps \(3\) exceeds the total steps \(2\)/);
    await expect(trainCausalLM(model, [], [], { ...base, maxSteps: 2 })).rejects.toThrow(
      /training set is empty/,
    );
    await expect(trainCausalLM(model, examples, [], { ...base, maxSteps: 2, resume: true })).rejects.toThrow(
      /resume needs checkpointDir/,
    );
    model.dispose();
  });
});
