import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { assertNoLeaks } from '@relign/tensor/testing';
import type { CausalLM } from './causal-lm.js';
import { fusedDecode } from './gpt2.js';
import { withRandomModel } from './test-helpers.js';

/** A GPT-2 with dh = 5 (not a multiple of 4) and an MLP width that is not a multiple of 8. */
const ODD = { vocab_size: 29, n_positions: 24, n_embd: 15, n_layer: 2, n_head: 3, n_inner: 36 };

const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));

/**
 * Decodes `steps` tokens after a prefill (preallocated cache, so every step extends it in place) and returns
 * each step's logits bits and the kernels the steps ran.
 */
async function decode(
  model: CausalLM,
  ids: number[][],
  mask: number[][] | undefined,
  steps: number,
): Promise<{ logits: number[][]; kernels: string[] }> {
  const B = ids.length;
  const opts = {
    useCache: true,
    cacheCapacity: ids[0]!.length + steps,
    ...(mask ? { attentionMask: mask } : {}),
  };
  const pre = model.forward(ids, opts);
  let cache = pre.cache!;
  tf.dispose([pre.logits, pre.hidden]);
  const logits: number[][] = [];
  const kernels: string[] = [];
  for (let s = 0; s < steps; s++) {
    const tokens = Array.from({ length: B }, (_, b) => [(3 * s + 5 * b + 1) % 29]);
    let out: ReturnType<CausalLM['forward']> | undefined;
    const info = await tf.profile(() => {
      out = model.forward(tokens, mask ? { cache, attentionMask: tokens.map(() => [1]) } : { cache });
      return [out.logits];
    });
    kernels.push(...info.kernels.map((k) => k.name));
    logits.push(bits((await out!.logits.data()) as Float32Array));
    tf.dispose([out!.logits, out!.hidden]);
    cache.dispose();
    cache = out!.cache!;
  }
  cache.dispose();
  return { logits, kernels };
}

describe('GPT-2 decode steps as one fused block kernel (wasm)', () => {
  let model: CausalLM;
  withRandomModel('wasm', (m) => (model = m), ODD);
  afterEach(() => {
    fusedDecode.enabled = true;
  });

  const cases: [string, number[][], number[][] | undefined][] = [
    [
      'equal-length prompts (no bias)',
      [
        [1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
      ],
      undefined,
    ],
    [
      'left-padded prompts (key-padding bias)',
      [
        [0, 0, 3],
        [2, 7, 1],
        [0, 5, 9],
      ],
      [
        [0, 0, 1],
        [1, 1, 1],
        [0, 1, 1],
      ],
    ],
    ['one row', [[11, 12]], undefined],
  ];

  it.each(cases)('gives the same logits bits as the ops, step by step: %s', async (_, ids, mask) => {
    const fused = await decode(model, ids, mask, 5);
    fusedDecode.enabled = false;
    const ops = await decode(model, ids, mask, 5);
    expect(fused.kernels.filter((k) => k === 'RelignGpt2DecodeBlock')).toHaveLength(5 * ODD.n_layer);
    expect(ops.kernels).not.toContain('RelignGpt2DecodeBlock');
    expect(fused.logits).toEqual(ops.logits);
  });

  it('leaks no tensor over a decode', async () => {
    await assertNoLeaks(
      () =>
        decode(
          model,
          [
            [1, 2],
            [3, 4],
          ],
          undefined,
          3,
        ),
      { label: 'fused decode' },
    );
  });
});
