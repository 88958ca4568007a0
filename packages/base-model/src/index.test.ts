import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@relign/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseModelDir, loadBaseModel, type BaseModel } from './index.js';

describe('@relign/base-model', () => {
  let base: BaseModel;
  beforeAll(async () => {
    await initBackend('cpu');
    base = await loadBaseModel({ trainable: false });
  });
  afterAll(() => base?.model.dispose());

  it('baseModelDir() holds the model files in the Hugging Face layout', () => {
    const dir = baseModelDir();
    for (const file of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'training.json']) {
      expect(existsSync(join(dir, file)), file).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).model_type).toBe('gpt2');
  });

  it('loads the model and a tokenizer of the same 1024-token vocabulary', () => {
    const { model, tokenizer } = base;
    expect(tokenizer.vocabSize).toBe(1024);
    expect(model.config.vocab_size).toBe(1024);
    expect(model.config).toMatchObject({ n_layer: 4, n_embd: 128, n_head: 4, n_positions: 128 });
    expect(tokenizer.eosId).toBe(model.config.eos_token_id);
    expect(tokenizer.decode(tokenizer.encode('The movie was great.'))).toBe('The movie was great.');
  });

  it('runs a forward pass: logits [B, T, V], finite, and it prefers real text to shuffled text', async () => {
    const { model, tokenizer } = base;
    const text = tokenizer.encode(' the food was good and the service was friendly.');
    const shuffled = [...text].reverse();
    const ids = tf.tensor2d([text, shuffled], [2, text.length], 'int32');
    const { logits } = model.forward(ids);
    expect(logits.shape).toEqual([2, text.length, 1024]);
    // Mean next-token log-likelihood of each row: a pretrained model scores the sentence above its reversal.
    const nll = tf.tidy(() => {
      const logp = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [2, text.length - 1, 1024]));
      const next = tf.oneHot(tf.tensor2d([text.slice(1), shuffled.slice(1)], undefined, 'int32'), 1024);
      return tf.neg(tf.mean(tf.sum(tf.mul(logp, next), -1), -1));
    });
    const [real, reversed] = await nll.data();
    expect(Number.isFinite(real!)).toBe(true);
    expect(real!).toBeLessThan(reversed!);
    tf.dispose([ids, logits, nll]);
  });

  it('gives independent copies: disposing one loaded model leaves another usable', async () => {
    const other = await loadBaseModel({ trainable: false });
    other.model.dispose();
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const { logits } = base.model.forward(ids);
    expect(logits.shape).toEqual([1, 3, 1024]);
    tf.dispose([ids, logits]);
  });
});
