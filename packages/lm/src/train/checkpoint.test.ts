import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tokenizePromptCompletion } from '../data/tokenize.js';
import { sft, type SftOptions } from '../sft/sft.js';
import { charTokenizer, snapshot, TINY_DATA, tinyModel } from '../sft/test-fixtures.js';
import { trainCausalLM } from './causal-lm.js';
import { parseLoopState } from './checkpoint.js';
import { attachLora, loraAdapterOf } from '../lora/attach.js';
import type { CausalLM } from '../model/causal-lm.js';

const BASE: SftOptions = {
  tokenizer: charTokenizer,
  batchSize: 2,
  lr: 1e-2,
  warmupSteps: 2,
  maxSteps: 8,
  evalEvery: 4,
  evalFraction: 0.2,
  seed: 3,
};

describe('supervised-loop checkpoints (cpu)', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'relign-loop-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('resumes bit-identically from a checkpoint folder of the previous format (version 1)', async () => {
    const full = tinyModel(1);
    const ref = await sft(full, TINY_DATA, BASE);
    const expected = snapshot(full);
    full.dispose();

    const ckpt = join(dir, 'v1');
    const first = tinyModel(1);
    const controller = new AbortController();
    await sft(first, TINY_DATA, {
      ...BASE,
      checkpointDir: ckpt,
      signal: controller.signal,
      onMetrics: (m) => {
        if (m.step === 5) controller.abort();
      },
    });
    first.dispose();
    // Rewrite the folder as relign wrote it before the shared format: a `step-N-<hex>` directory, a pointer
    // without format/version, and the loop state itself (windows as recentLosses) as trainer_state.json.
    const file = JSON.parse(await readFile(join(ckpt, 'step-00000005', 'trainer_state.json'), 'utf8'));
    expect(file).toMatchObject({ format: 'relign-checkpoint-state', version: 2, kind: 'causal-lm', step: 5 });
    const { recent, ...rest } = file.state;
    await rename(join(ckpt, 'step-00000005'), join(ckpt, 'step-00000005-a1b2c3'));
    await writeFile(
      join(ckpt, 'step-00000005-a1b2c3', 'trainer_state.json'),
      JSON.stringify({ version: 1, ...rest, recentLosses: recent.loss }),
    );
    await writeFile(
      join(ckpt, 'latest.json'),
      JSON.stringify({ checkpoint: 'step-00000005-a1b2c3', step: 5 }),
    );

    const resumed = tinyModel(99);
    const r = await sft(resumed, TINY_DATA, { ...BASE, checkpointDir: ckpt, resume: true });
    expect(r.resumedFromStep).toBe(5);
    expect(r.trainLoss).toBe(ref.trainLoss);
    expect(r.evalLoss).toBe(ref.evalLoss);
    for (const [name, x] of snapshot(resumed))
      expect(Array.from(x), name).toEqual(Array.from(expected.get(name)!));
    resumed.dispose();
  });

  describe('LoRA models', () => {
    const LORA = { r: 2, loraAlpha: 4 };
    const adapterSnapshot = (m: CausalLM) =>
      new Map([...loraAdapterOf(m)!.variables()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
    const loraModel = (seed: number, opts: object = LORA) => {
      const m = tinyModel(1);
      attachLora(m, { ...opts, seed });
      return m;
    };
    /** Runs 5 of 8 steps into `ckpt` and stops. */
    const interrupted = async (model: CausalLM, ckpt: string) => {
      const controller = new AbortController();
      await sft(model, TINY_DATA, {
        ...BASE,
        checkpointDir: ckpt,
        signal: controller.signal,
        onMetrics: (m) => {
          if (m.step === 5) controller.abort();
        },
      });
      model.dispose();
    };

    it('checkpoints the adapter (PEFT files) and resumes it bit-identically', async () => {
      const full = loraModel(5);
      const ref = await sft(full, TINY_DATA, BASE);
      const expected = adapterSnapshot(full);
      const expectedBase = snapshot(full);
      full.dispose();

      const ckpt = join(dir, 'lora');
      await interrupted(loraModel(5), ckpt);
      const files = await readdir(join(ckpt, 'step-00000005'));
      expect(files).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']));

      const resumed = loraModel(77); // another A init: the adapter must come from the checkpoint
      const r = await sft(resumed, TINY_DATA, { ...BASE, checkpointDir: ckpt, resume: true });
      expect(r.resumedFromStep).toBe(5);
      expect(r.trainLoss).toBe(ref.trainLoss);
      expect(r.evalLoss).toBe(ref.evalLoss);
      const got = adapterSnapshot(resumed);
      expect([...got.keys()]).toEqual([...expected.keys()]);
      for (const [name, x] of got) expect(Array.from(x), name).toEqual(Array.from(expected.get(name)!));
      for (const [name, x] of snapshot(resumed))
        expect(Array.from(x), name).toEqual(Array.from(expectedBase.get(name)!));
      resumed.dispose();
    });

    it('refuses a checkpoint whose adapter the model lacks, or the reverse, or of another rank', async () => {
      const loraCkpt = join(dir, 'lora-mismatch');
      await interrupted(loraModel(5), loraCkpt);
      const plain = tinyModel(1);
      await expect(sft(plain, TINY_DATA, { ...BASE, checkpointDir: loraCkpt, resume: true })).rejects.toThrow(
        /holds a LoRA adapter \(adapter_config\.json\) but the model has none; resume with LoRA enabled/,
      );
      plain.dispose();
      const otherRank = loraModel(5, { r: 4, loraAlpha: 4 });
      await expect(
        sft(otherRank, TINY_DATA, { ...BASE, checkpointDir: loraCkpt, resume: true }),
      ).rejects.toThrow(/its LoRA adapter differs from the model's \(checkpoint vs model: r 2 vs 4\)/);
      otherRank.dispose();

      const fullCkpt = join(dir, 'full-mismatch');
      await interrupted(tinyModel(1), fullCkpt);
      const lora = loraModel(5);
      await expect(sft(lora, TINY_DATA, { ...BASE, checkpointDir: fullCkpt, resume: true })).rejects.toThrow(
        /holds full weights \(no adapter_config\.json\) but the model has a LoRA adapter/,
      );
      lora.dispose();
    });
  });

  it('reads no tensor synchronously: one batched read per step', async () => {
    const { examples } = tokenizePromptCompletion(TINY_DATA, charTokenizer, { maxLength: 16 });
    const model = tinyModel(2);
    const dataSync = vi.spyOn(tf.Tensor.prototype, 'dataSync');
    const arraySync = vi.spyOn(tf.Tensor.prototype, 'arraySync');
    const data = vi.spyOn(tf.Tensor.prototype, 'data');
    try {
      const r = await trainCausalLM(model, examples, examples.slice(0, 2), {
        batchSize: 2,
        padId: 0,
        lr: 1e-3,
        maxSteps: 3,
        evalEvery: 100,
      });
      expect(r.steps).toBe(3);
      expect(dataSync).not.toHaveBeenCalled();
      expect(arraySync).not.toHaveBeenCalled();
      expect(data).toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
      model.dispose();
    }
  });
});

describe('parseLoopState', () => {
  const rng = { algorithm: 'xoshiro128**', version: 1, s: [1, 2, 3, 4] };
  const v1 = {
    version: 1,
    kind: 'reward-model',
    step: 4,
    totalSteps: 10,
    optimizerStep: 4,
    epoch: 0,
    index: 32,
    epochRng: rng,
    recentLosses: [0.5, 0.25],
    recentAccuracies: [0.75, 1],
    skippedSteps: 0,
    tokensSeen: 100,
    elapsedSeconds: 1.5,
    fingerprint: { numTrain: 48, seed: '2' },
    lastEval: { step: 4, accuracy: 0.5, meanMargin: 0.1, loss: 0.6, count: 12 },
  };
  const read = (state: unknown, version = 1) => ({
    path: '/c',
    file: '/c/trainer_state.json',
    version,
    kind: 'reward-model',
    step: 4,
    state,
  });

  it('converts a version 1 reward-model state (windows as recentLosses / recentAccuracies)', () => {
    const s = parseLoopState(read(v1));
    expect(s.recent).toEqual({ loss: [0.5, 0.25], accuracy: [0.75, 1] });
    expect(s.lastEval).toEqual(v1.lastEval);
    expect(s).toMatchObject({ step: 4, totalSteps: 10, index: 32, fingerprint: v1.fingerprint });
  });

  it('names the file and the field that is wrong', () => {
    expect(() => parseLoopState(read({ ...v1, index: -1 }))).toThrow(
      /\/c\/trainer_state\.json: field 'index' must be an integer >= 0 \(got -1\)/,
    );
    expect(() => parseLoopState(read({ ...v1, recentLosses: ['x'] }))).toThrow(/field 'recentLosses'/);
    expect(() => parseLoopState(read({ ...v1, epochRng: { ...rng, s: [0, 0, 0, 0] } }))).toThrow(
      /field 'epochRng' must be an RNG state/,
    );
    expect(() => parseLoopState(read({ ...v1, recent: { loss: [1] } }, 2))).not.toThrow();
    expect(() => parseLoopState(read({ ...v1 }, 2))).toThrow(/field 'recent' must be an object/);
  });
});
