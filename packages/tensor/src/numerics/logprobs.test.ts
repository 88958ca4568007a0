import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '../testing/index.js';
import { logprobsFromLogits, logprobsFromLogitsWith } from './logprobs.js';

const STRATEGIES = ['scatter', 'onehot'] as const;

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i]! - expected[i]!) > tol) {
      throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]} (tol ${tol})`);
    }
  }
}

/** float64 reference: log-softmax(z/τ) and softmax(z/τ) per row. */
function reference(logits: Float32Array, V: number, tau: number) {
  const rows = logits.length / V;
  const logp = new Float64Array(logits.length);
  const p = new Float64Array(logits.length);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]! / tau);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v]! / tau - m);
    const lse = m + Math.log(s);
    for (let v = 0; v < V; v++) {
      logp[r * V + v] = logits[r * V + v]! / tau - lse;
      p[r * V + v] = Math.exp(logp[r * V + v]!);
    }
  }
  return { logp, p };
}

function randomCase(seed: string, B: number, T: number, V: number) {
  const rng = createRng(seed);
  const logits = Float32Array.from({ length: B * T * V }, () => rng.normal(0, 3));
  const tokens = Int32Array.from({ length: B * T }, () => rng.int(V));
  const weights = Float32Array.from({ length: B * T }, () => rng.normal());
  return { logits, tokens, weights };
}

describe.each(TEST_BACKENDS)('logprobsFromLogits on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('matches T5 at τ = 1 and τ = 0.5 (logits [2, 1, 0], every token)', () => {
    const logits = tf.tensor3d([
      [
        [2, 1, 0],
        [2, 1, 0],
        [2, 1, 0],
      ],
    ]);
    const tokens = tf.tensor2d([[0, 1, 2]], [1, 3], 'int32');
    const at1 = logprobsFromLogits(logits, tokens);
    const atHalf = logprobsFromLogits(logits, tokens, 0.5);
    expect(at1.shape).toEqual([1, 3]);
    expectClose(at1.dataSync(), [-0.407606, -1.407606, -2.407606], 2e-6);
    expectClose(atHalf.dataSync(), [-0.142932, -2.142932, -4.142932], 2e-6);
    tf.dispose([logits, tokens, at1, atHalf]);
  });

  it('matches a float64 reference on random logits (B=3, T=4, V=37, τ=0.7)', () => {
    const B = 3,
      T = 4,
      V = 37,
      tau = 0.7;
    const c = randomCase('lp-fwd', B, T, V);
    const { logp } = reference(c.logits, V, tau);
    const expected = Array.from(c.tokens, (tok, r) => logp[r * V + tok]!);
    const out = tf.tidy(() =>
      logprobsFromLogits(
        tf.tensor3d(c.logits, [B, T, V]),
        tf.tensor2d(c.tokens, [B, T], 'int32'),
        tau,
      ).dataSync(),
    );
    expectClose(out, expected, 1e-5);
  });

  it('gradient w.r.t. logits equals (softmax(z/τ) − onehot)·(−w)/τ, also through ops before it', () => {
    const B = 2,
      T = 3,
      V = 11;
    const cases = [
      [1, 'scatter'],
      [0.5, 'scatter'],
      [1, 'onehot'],
      [0.5, 'onehot'],
    ] as const;
    for (const [tau, strategy] of cases) {
      const lp = (x: tf.Tensor, tok: tf.Tensor2D) =>
        logprobsFromLogitsWith(x as tf.Tensor3D, tok, tau, strategy);
      const c = randomCase(`lp-grad-${tau}`, B, T, V);
      const { p } = reference(c.logits, V, tau);
      const logits = tf.tensor3d(c.logits, [B, T, V]);
      const tokens = tf.tensor2d(c.tokens, [B, T], 'int32');
      const w = tf.tensor2d(c.weights, [B, T]);
      // d/dlogits Σ w·ℓ = w·(onehot − softmax(z/τ))/τ.
      const expected = new Float64Array(B * T * V);
      for (let r = 0; r < B * T; r++) {
        for (let v = 0; v < V; v++) {
          const onehot = v === c.tokens[r] ? 1 : 0;
          expected[r * V + v] = (c.weights[r]! * (onehot - p[r * V + v]!)) / tau;
        }
      }
      const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(lp(x, tokens), w)))(logits);
      expectClose(g.dataSync(), expected, 2e-6);
      // Chain rule through an op that precedes it: logits = 2·x gives twice the gradient.
      const g2 = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(lp(tf.mul(x, 2), tokens), w)))(tf.mul(logits, 0.5));
      expectClose(
        g2.dataSync(),
        Array.from(expected, (e) => 2 * e),
        4e-6,
      );
      tf.dispose([logits, tokens, w, g, g2]);
    }
  });

  it('variableGrads works (the way a trainer calls it) and tokens may be disposed before backprop', () => {
    const B = 1,
      T = 2,
      V = 5;
    const c = randomCase('lp-var', B, T, V);
    const v = tf.variable(tf.tensor3d(c.logits, [B, T, V]));
    const { p } = reference(c.logits, V, 1);
    const { value, grads } = tf.variableGrads(() => {
      const tokens = tf.tensor2d(c.tokens, [B, T], 'int32');
      const lp = logprobsFromLogits(v as unknown as tf.Tensor3D, tokens);
      tokens.dispose();
      return tf.neg(tf.sum(lp)) as tf.Scalar;
    }, [v]);
    const g = grads[v.name]!.dataSync();
    for (let r = 0; r < B * T; r++) {
      for (let k = 0; k < V; k++) {
        expect(g[r * V + k]).toBeCloseTo(p[r * V + k]! - (k === c.tokens[r] ? 1 : 0), 5);
      }
    }
    tf.dispose([value, ...Object.values(grads), v]);
  });

  it('handles a GPT-2-sized vocabulary (V = 50257): values and the gradient at the token', () => {
    const B = 2,
      T = 2,
      V = 50257;
    const c = randomCase('lp-bigv', B, T, V);
    const { logp, p } = reference(c.logits, V, 1);
    const logits = tf.tensor3d(c.logits, [B, T, V]);
    const tokens = tf.tensor2d(c.tokens, [B, T], 'int32');
    const out = logprobsFromLogits(logits, tokens);
    // float32 summation over 50257 terms: ~3e-6 relative error on values of magnitude ~17.
    expectClose(
      out.dataSync(),
      Array.from(c.tokens, (tok, r) => logp[r * V + tok]!),
      1e-4,
    );
    for (const strategy of STRATEGIES) {
      const g = tf.grad((x: tf.Tensor) =>
        tf.sum(logprobsFromLogitsWith(x as tf.Tensor3D, tokens, 1, strategy)),
      )(logits);
      const gd = g.dataSync();
      for (let r = 0; r < B * T; r++) {
        const tok = c.tokens[r]!;
        expect(gd[r * V + tok]).toBeCloseTo(1 - p[r * V + tok]!, 5);
        expect(gd[r * V + ((tok + 1) % V)]).toBeCloseTo(-p[r * V + ((tok + 1) % V)]!, 6);
      }
      g.dispose();
    }
    tf.dispose([logits, tokens, out]);
  });

  it('validates inputs with clear errors', () => {
    tf.tidy(() => {
      const logits = tf.zeros([1, 2, 3]) as tf.Tensor3D;
      const tokens = tf.tensor2d([[0, 1]], [1, 2], 'int32');
      expect(() => logprobsFromLogits(tf.zeros([2, 3]) as never, tokens)).toThrow(
        /`logits` must have rank 3 \[B, T, V\]/,
      );
      expect(() => logprobsFromLogits(logits, tf.tensor1d([0, 1], 'int32') as never)).toThrow(
        /`tokens` must have rank 2/,
      );
      expect(() => logprobsFromLogits(logits, tf.tensor2d([[0, 1]]))).toThrow(/`tokens` must be int32/);
      expect(() => logprobsFromLogits(tf.cast(logits, 'int32') as tf.Tensor3D, tokens)).toThrow(
        /`logits` must be float32/,
      );
      expect(() => logprobsFromLogits(logits, tf.tensor2d([[0, 1, 2]], [1, 3], 'int32'))).toThrow(
        /must have shape \[B, T\] = \[1, 2\]/,
      );
      expect(() => logprobsFromLogits(logits, tokens, 0)).toThrow(
        /`temperature` must be a finite number > 0/,
      );
      expect(() => logprobsFromLogits(logits, tokens, Number.NaN)).toThrow(/temperature/);
      expect(() => logprobsFromLogits([[[1]]] as never, tokens)).toThrow(/must be a tf.Tensor/);
    });
  });

  it('gives NaN (not a neighbouring logit) for a token id outside the vocabulary, checked on the device', () => {
    tf.tidy(() => {
      // Id 3 at [0, 0] has flat index 3, which is position [0, 1]'s logit of id 0: a plain gather reads it.
      const logits = tf.tensor3d([
        [
          [0, 1, 2],
          [3, 4, 5],
        ],
      ]);
      const ok = logprobsFromLogits(logits, tf.tensor2d([[0, 0]], [1, 2], 'int32')).dataSync();
      for (const bad of [
        [3, 0],
        [0, -1],
        [0, 3],
      ]) {
        const lp = logprobsFromLogits(logits, tf.tensor2d([bad], [1, 2], 'int32')).dataSync();
        bad.forEach((id, t) => {
          if (id === 0) expect(lp[t]).toBe(ok[t]);
          else expect(lp[t]).toBeNaN();
        });
      }
    });
  });

  it('does not leak tensors (forward and gradient)', async () => {
    const logits = tf.randomNormal([2, 3, 7], 0, 1, 'float32', 1) as tf.Tensor3D;
    const tokens = tf.tensor2d(
      [
        [0, 1, 6],
        [3, 2, 5],
      ],
      [2, 3],
      'int32',
    );
    await assertNoLeaks(() => logprobsFromLogits(logits, tokens, 0.8), { label: 'logprobsFromLogits' });
    for (const strategy of STRATEGIES) {
      await assertNoLeaks(
        () =>
          tf.grad((x: tf.Tensor) => tf.sum(logprobsFromLogitsWith(x as tf.Tensor3D, tokens, 0.8, strategy)))(
            logits,
          ),
        { label: `grad of logprobsFromLogits (${strategy})` },
      );
    }
    tf.dispose([logits, tokens]);
  });
});
