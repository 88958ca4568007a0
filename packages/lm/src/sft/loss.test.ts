import * as tf from '@tensorflow/tfjs-core';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collate } from '../data/collate.js';
import { tokenizePromptCompletion } from '../data/tokenize.js';
import type { CausalLM } from '../model/causal-lm.js';
import { evaluateLoss } from './evaluate.js';
import { batchToTensors, causalLmLoss, disposeBatchTensors } from './loss.js';
import { charTokenizer, TINY_DATA, tinyModel } from './test-fixtures.js';

/** −log softmax(row)[k] in float64. */
function nll(row: ArrayLike<number>, k: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - max);
  return Math.log(s) + max - row[k]!;
}

describe.each(TEST_BACKENDS)('causal-LM loss on %s', (backend) => {
  let model: CausalLM;
  beforeAll(async () => {
    await useBackend(backend);
    model = tinyModel(3);
  });
  afterAll(() => model.dispose());

  const { examples } = tokenizePromptCompletion(TINY_DATA.slice(0, 3), charTokenizer, { maxLength: 16 });

  /** The loss computed by hand: each example alone (unpadded) through forward, NLL of completion + EOS. */
  function handLoss(): { sum: number; count: number } {
    let sum = 0;
    let count = 0;
    for (const ex of examples) {
      const { logits, hidden } = model.forward([Array.from(ex.ids)]);
      const V = logits.shape[2];
      const data = logits.dataSync();
      logits.dispose();
      hidden.dispose();
      for (let t = ex.promptLength; t < ex.length; t++) {
        // Token t is predicted by the logits at position t − 1.
        sum += nll(data.subarray((t - 1) * V, t * V), ex.ids[t]!);
        count++;
      }
    }
    return { sum, count };
  }

  it('equals the hand computation from forward logits (padded batch, pad == eos)', async () => {
    const { sum, count } = handLoss();
    expect(count).toBe(5 + 9 + 8); // " sat"+EOS, " ran far"+EOS, " is hot"+EOS
    const batch = batchToTensors(collate(examples, { padId: charTokenizer.padId }));
    const loss = causalLmLoss(model, batch);
    expect(loss.dataSync()[0]).toBeCloseTo(sum / count, 5);
    loss.dispose();
    disposeBatchTensors(batch);
    const ev = await evaluateLoss(model, examples, { batchSize: 2, padId: 0 });
    expect(ev.targets).toBe(count);
    expect(ev.loss).toBeCloseTo(sum / count, 5);
    expect(ev.perplexity).toBeCloseTo(Math.exp(sum / count), 4);
  });

  it('has gradients and leaks no tensors', async () => {
    const batch = batchToTensors(collate(examples, { padId: 0 }));
    const vars = [...model.trainableVariables().values()];
    await assertNoLeaks(
      () => {
        const { value, grads } = tf.variableGrads(() => causalLmLoss(model, batch), vars);
        const norm = Object.values(grads).reduce(
          (a, g) => a + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]!),
          0,
        );
        expect(norm).toBeGreaterThan(0);
        value.dispose();
        for (const g of Object.values(grads)) g.dispose();
      },
      { label: 'causalLmLoss + variableGrads' },
    );
    await assertNoLeaks(() => evaluateLoss(model, examples, { batchSize: 2 }), { label: 'evaluateLoss' });
    disposeBatchTensors(batch);
  });
});
