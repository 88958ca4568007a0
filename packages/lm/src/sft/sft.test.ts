import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenizePromptCompletion } from '../data/tokenize.js';
import { evaluateLoss } from './evaluate.js';
import { sft, type SftOptions } from './sft.js';
import type { TrainMetrics } from '../train/causal-lm.js';
import { charTokenizer, snapshot, TINY_DATA, tinyModel } from './test-fixtures.js';

const BASE: SftOptions = {
  tokenizer: charTokenizer,
  batchSize: 2,
  lr: 1e-2,
  warmupSteps: 2,
  evalFraction: 0.2,
  seed: 5,
};

function expectSameParams(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, x] of a) {
    const y = b.get(name)!;
    let same = x.length === y.length;
    for (let i = 0; same && i < x.length; i++) same = Object.is(x[i], y[i]);
    expect(same, `parameter ${name} differs`).toBe(true);
  }
}

describe.each(TEST_BACKENDS)('sft on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('overfits a tiny set: loss falls, eval metrics are consistent, metrics are reported', async () => {
    const model = tinyModel(1);
    const log: TrainMetrics[] = [];
    const r = await sft(model, TINY_DATA, {
      ...BASE,
      maxSteps: 60,
      evalEvery: 30,
      evalFraction: 0,
      onMetrics: (m) => log.push(m),
    });
    expect(r.steps).toBe(60);
    expect(log).toHaveLength(60);
    const first = log[0]!['train/loss'];
    expect(first).toBeGreaterThan(2.5); // ~ln(29) = 3.37 at init
    expect(r.trainLoss).toBeLessThan(first / 3);
    expect(log[0]!['train/lr']).toBeCloseTo(5e-3, 10); // warm-up step 0 of 2
    expect(
      log.every((m) => m.skipped === false && m['train/grad_norm'] > 0 && m['train/tokens_per_s'] > 0),
    ).toBe(true);
    expect(r.numEval).toBe(0);
    expect(Number.isNaN(r.evalLoss)).toBe(true);
    // The EOS that ends a completion was trained although pad == eos: after "cat sat" the model now ends.
    const ids = charTokenizer.encode('cat sat');
    const { logits, hidden } = model.forward([ids]);
    const last = tf.tidy(
      () => tf.argMax(tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]), -1).dataSync()[0],
    );
    logits.dispose();
    hidden.dispose();
    expect(last).toBe(charTokenizer.eosId);
    model.dispose();
  });

  it('holds out a seeded eval split and reports perplexity = exp(loss)', async () => {
    const model = tinyModel(1);
    const log: TrainMetrics[] = [];
    const r = await sft(model, TINY_DATA, {
      ...BASE,
      maxSteps: 4,
      evalEvery: 2,
      onMetrics: (m) => log.push(m),
    });
    expect(r.numTrain + r.numEval).toBe(TINY_DATA.length);
    expect(r.numEval).toBe(1);
    expect(r.evalPerplexity).toBeCloseTo(Math.exp(r.evalLoss), 6);
    expect(log.map((m) => m['eval/loss'] !== undefined)).toEqual([false, true, false, true]);
    expect(log[3]!['eval/loss']).toBe(r.evalLoss);
    model.dispose();
  });

  it('is deterministic under a seed', async () => {
    const run = async (seed: number) => {
      const model = tinyModel(1);
      await sft(model, TINY_DATA, { ...BASE, maxSteps: 5, seed });
      const w = snapshot(model);
      model.dispose();
      return w;
    };
    const a = await run(5);
    expectSameParams(a, await run(5));
    const c = await run(6);
    expect(Object.is(c.get('wte.weight')![1], a.get('wte.weight')![1])).toBe(false);
  });

  it('leaks no tensors across steps, evaluations and checkpoints', async () => {
    const model = tinyModel(1);
    const dir = await mkdtemp(join(tmpdir(), 'relign-sft-leak-'));
    try {
      const counts: number[] = [];
      const { examples } = tokenizePromptCompletion(TINY_DATA, charTokenizer, { maxLength: 16 });
      await sft(model, TINY_DATA, {
        ...BASE,
        maxSteps: 7,
        evalEvery: 2,
        checkpointDir: dir,
        checkpointEvery: 2,
        onMetrics: () => counts.push(tf.memory().numTensors),
      });
      // The optimizer's moments appear at the first update; from then on the count must stay flat.
      expect(counts.slice(1)).toEqual(counts.slice(1).map(() => counts[1]));
      // Evaluation alone, repeated, is flat too.
      await assertNoLeaks(() => evaluateLoss(model, examples, { batchSize: 4 }), { label: 'evaluateLoss' });
    } finally {
      model.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sft checkpoints (cpu)', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'relign-sft-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const opts: SftOptions = { ...BASE, maxSteps: 8, evalEvery: 4 };

  it('a run stopped after 5 steps and resumed ends with parameters identical to an uninterrupted run', async () => {
    const full = tinyModel(1);
    const ref = await sft(full, TINY_DATA, opts);
    const expected = snapshot(full);
    full.dispose();

    const ckpt = join(dir, 'abort');
    const first = tinyModel(1);
    const controller = new AbortController();
    const r1 = await sft(first, TINY_DATA, {
      ...opts,
      checkpointDir: ckpt,
      checkpointEvery: 3,
      signal: controller.signal,
      onMetrics: (m) => {
        if (m.step === 5) controller.abort();
      },
    });
    expect(r1.interrupted).toBe(true);
    expect(r1.steps).toBe(5);
    first.dispose();
    // One checkpoint directory survives (the one latest.json names), with every file.
    const entries = (await readdir(ckpt)).sort();
    expect(entries).toHaveLength(2);
    const latest = JSON.parse(await readFile(join(ckpt, 'latest.json'), 'utf8')) as {
      checkpoint: string;
      step: number;
    };
    expect(latest.step).toBe(5);
    expect((await readdir(join(ckpt, latest.checkpoint))).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'trainer_state.json',
    ]);

    const resumed = tinyModel(99); // different init: every weight must come from the checkpoint
    const r2 = await sft(resumed, TINY_DATA, { ...opts, checkpointDir: ckpt, resume: true });
    expect(r2.resumedFromStep).toBe(5);
    expect(r2.steps).toBe(8);
    expectSameParams(snapshot(resumed), expected);
    expect(r2.evalLoss).toBe(ref.evalLoss);
    expect(r2.trainLoss).toBe(ref.trainLoss);
    resumed.dispose();
  });

  it('resumes after a crash from the last periodic checkpoint', async () => {
    const full = tinyModel(1);
    await sft(full, TINY_DATA, opts);
    const expected = snapshot(full);
    full.dispose();

    const ckpt = join(dir, 'crash');
    const crashed = tinyModel(1);
    await expect(
      sft(crashed, TINY_DATA, {
        ...opts,
        checkpointDir: ckpt,
        checkpointEvery: 3,
        onMetrics: (m) => {
          if (m.step === 7) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    crashed.dispose();
    const resumed = tinyModel(1);
    const r = await sft(resumed, TINY_DATA, { ...opts, checkpointDir: ckpt, resume: true });
    expect(r.resumedFromStep).toBe(6);
    expectSameParams(snapshot(resumed), expected);
    resumed.dispose();
  });

  it('refuses to resume with different settings', async () => {
    const ckpt = join(dir, 'abort');
    const model = tinyModel(1);
    await expect(
      sft(model, TINY_DATA, { ...opts, batchSize: 3, checkpointDir: ckpt, resume: true }),
    ).rejects.toThrow(/made with batchSize = 2, this run has 3/);
    model.dispose();
  });

  it('skips non-finite updates and reports them', async () => {
    const model = tinyModel(1);
    const v = model.variables().get('ln_f.bias')!;
    v.assign(tf.fill(v.shape, Number.NaN));
    const before = snapshot(model);
    const log: TrainMetrics[] = [];
    const r = await sft(model, TINY_DATA, {
      ...BASE,
      maxSteps: 2,
      evalFraction: 0,
      onMetrics: (m) => log.push(m),
    });
    expect(r.skippedSteps).toBe(2);
    expect(log.every((m) => m.skipped)).toBe(true);
    expectSameParams(snapshot(model), before);
    model.dispose();
  });

  it('trains conversational rows; without a chat template they are refused with the row named', async () => {
    // A toy chat template over the character tokenizer: "q <user text> a <assistant text> " ...
    const chat = {
      ...charTokenizer,
      applyChatTemplate: (
        msgs: readonly { role: string; content: string }[],
        o: { addGenerationPrompt?: boolean } = {},
      ) =>
        msgs.map((m) => `${m.role === 'user' ? 'q' : 'a'} ${m.content} `).join('') +
        (o.addGenerationPrompt ? 'a ' : ''),
    };
    const rows = TINY_DATA.map((d) => ({
      messages: [
        { role: 'user' as const, content: d.prompt },
        { role: 'assistant' as const, content: d.completion.trim() },
      ],
    }));
    const model = tinyModel(1);
    const r = await sft(model, rows, { ...BASE, tokenizer: chat, maxSteps: 2, evalFraction: 0 });
    // "q the sun a is hot " is 19 tokens > n_positions 16: dropped.
    expect([r.steps, r.numTrain, r.dropped]).toEqual([2, TINY_DATA.length - 1, 1]);
    await expect(sft(model, rows, { ...BASE, maxSteps: 1 })).rejects.toThrow(
      /data\[\d\] is conversational \(message lists\) but the tokenizer has no chat template/,
    );
    model.dispose();
  });

  it('reads a JSONL dataset and names the bad line', async () => {
    const path = join(dir, 'train.jsonl');
    await writeFile(path, TINY_DATA.map((d) => JSON.stringify(d)).join('\n') + '\n{"prompt": "x"}\n');
    const model = tinyModel(1);
    await expect(sft(model, path, { ...BASE, maxSteps: 2 })).rejects.toThrow(
      `${path} line 7: field "completion" is missing`,
    );
    await writeFile(path, TINY_DATA.map((d) => JSON.stringify(d)).join('\n') + '\n');
    const r = await sft(model, path, { ...BASE, maxSteps: 2 });
    expect(r.numTrain + r.numEval).toBe(TINY_DATA.length);
    model.dispose();
  });
});
