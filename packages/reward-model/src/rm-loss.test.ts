import * as tf from '@tensorflow/tfjs-core';
import { batchToTensors, causalLmLoss, collate, disposeBatchTensors } from '@relign/lm';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { pairMetrics } from './bradley-terry.js';
import { RewardModel } from './reward-model.js';
import { disposePairBatch, pairBatch, rewardModelLoss } from './rm-loss.js';
import { TINY_RM_CONFIG, wordTokenizer } from './test-fixtures.js';
import { tokenizePreferencePairs, type TokenizedPair } from './tokenize-pairs.js';

const PAIRS: TokenizedPair[] = tokenizePreferencePairs(
  [
    { prompt: 'the food was', chosen: 'good and great', rejected: 'bad' },
    { prompt: 'the movie is', chosen: 'fun', rejected: 'boring and poor', margin: 0.7 },
    { prompt: 'it is a place', chosen: 'nice nice', rejected: 'awful' },
  ],
  wordTokenizer,
  { maxLength: 16 },
).pairs;

describe('pairBatch', () => {
  beforeAll(() => useBackend('cpu'));

  it('stacks chosen then rejected rows and marks the chosen response tokens as LM targets', async () => {
    const b = pairBatch(PAIRS, { margin: 0.2 });
    expect(b.numPairs).toBe(3);
    expect(b.sequences.inputIds.shape).toEqual([6, 7]); // 2 × 3 rows; longest: 6 words + EOS
    const ids = (await b.sequences.inputIds.array()) as number[][];
    expect(ids[0]!.slice(0, 7)).toEqual([...wordTokenizer.encode('the food was good and great'), 0]);
    expect(ids[3]!.slice(0, 5)).toEqual([...wordTokenizer.encode('the food was bad'), 0]);
    // Chosen row 0: prompt 3 tokens, response 'good and great' + EOS at positions 3..6 → targets 2..5.
    const target = (await b.lmTargetMask.array()) as number[][];
    expect(target[0]).toEqual([0, 0, 1, 1, 1, 1]);
    // Chosen row 1: 'the movie is' + 'fun' + EOS → positions 3, 4 → targets 2, 3.
    expect(target[1]).toEqual([0, 0, 1, 1, 0, 0]);
    expect(ids[4]!).toEqual([...wordTokenizer.encode('the movie is boring and poor'), 0]);
    expect(Array.from(b.margins!.dataSync())).toEqual([Math.fround(0.2), Math.fround(0.7), Math.fround(0.2)]);
    disposePairBatch(b);
    expect(() => pairBatch([])).toThrow(/no pairs/);
  });
});

describe.each(TEST_BACKENDS)('rewardModelLoss on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('is the Bradley-Terry loss of the scores the model gives each sequence alone', async () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, { seed: 9, headStd: 1 });
    const c = await rm.scoreSequences(PAIRS.map((p) => p.chosen.ids));
    const r = await rm.scoreSequences(PAIRS.map((p) => p.rejected.ids));
    const expected = pairMetrics(c, r, [0.1, 0.7, 0.1]).loss;
    const batch = pairBatch(PAIRS, { margin: 0.1 });
    const out = rewardModelLoss(rm, batch);
    expect(out.lmLoss).toBeUndefined();
    expect(out.loss.dataSync()[0]).toBeCloseTo(expected, 5);
    expect(out.btLoss.dataSync()[0]).toBeCloseTo(expected, 5);
    Array.from(out.chosen.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(c[i]!, 5));
    Array.from(out.rejected.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(r[i]!, 5));
    tf.dispose([out.loss, out.btLoss, out.chosen, out.rejected]);
    disposePairBatch(batch);
    rm.dispose();
  });

  it('adds lmCoef times the LM cross-entropy on the chosen responses (docs/algorithms.md §2.2)', () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, { seed: 9 });
    const batch = pairBatch(PAIRS);
    const out = rewardModelLoss(rm, batch, { lmCoef: 0.5 });
    // Independent reference: @relign/lm's SFT loss on the chosen sequences (targets = response + EOS).
    const ref = batchToTensors(
      collate(
        PAIRS.map((p) => p.chosen),
        { padId: 0 },
      ),
    );
    const ce = causalLmLoss(rm.backbone, ref);
    const ceValue = ce.dataSync()[0]!;
    expect(ceValue).toBeGreaterThan(2); // ≈ ln(24) at init: the test compares non-trivial numbers
    expect(out.lmLoss!.dataSync()[0]).toBeCloseTo(ceValue, 5);
    expect(out.loss.dataSync()[0]).toBeCloseTo(out.btLoss.dataSync()[0]! + 0.5 * ceValue, 5);
    tf.dispose([out.loss, out.btLoss, out.lmLoss!, out.chosen, out.rejected, ce]);
    disposeBatchTensors(ref);
    disposePairBatch(batch);
    rm.dispose();
  });

  it('has finite gradients for every parameter and no leaks under variableGrads', async () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, { seed: 9 });
    const vars = [...rm.trainableVariables().values()];
    const batch = pairBatch(PAIRS);
    const { value, grads } = tf.variableGrads(() => rewardModelLoss(rm, batch, { lmCoef: 0.1 }).loss, vars);
    expect(Object.keys(grads)).toHaveLength(vars.length);
    for (const [name, g] of Object.entries(grads)) {
      expect(Array.from(g.dataSync()).every(Number.isFinite), name).toBe(true);
    }
    const head = grads[rm.head.weight.name]!;
    expect(Math.max(...Array.from(head.dataSync(), Math.abs))).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    await assertNoLeaks(
      () => {
        const r = tf.variableGrads(() => rewardModelLoss(rm, batch, { lmCoef: 0.1 }).loss, vars);
        tf.dispose([r.value, ...Object.values(r.grads)]);
      },
      { label: 'rewardModelLoss gradient' },
    );
    disposePairBatch(batch);
    rm.dispose();
  });
});
