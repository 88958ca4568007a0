import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { CausalLM } from './causal-lm.js';
import { parameterCount } from './size.js';
import type { GPT2Config } from './config.js';
import type { KVCache } from './kv-cache.js';
import {
  maxAbsDiff,
  randomizeWeights,
  referenceForward,
  SMALL,
  weightsOf,
  withRandomModel,
} from './test-helpers.js';

/** Logits of one row at the given columns, as plain arrays. */
function rowsAt(logits: tf.Tensor3D, b: number, cols: number[]): number[][] {
  const all = logits.arraySync();
  return cols.map((c) => all[b]![c]!);
}

describe.each(TEST_BACKENDS)('CausalLM on %s', (backend) => {
  let model: CausalLM;
  withRandomModel(backend, (m) => (model = m));

  it('returns logits [B,T,V] and hidden [B,T,D]', () => {
    const { logits, hidden, cache } = model.forward([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(logits.shape).toEqual([2, 3, 13]);
    expect(hidden.shape).toEqual([2, 3, 8]);
    expect(cache).toBeUndefined();
    logits.dispose();
    hidden.dispose();
  });

  it.each([0, 1, 2])('matches a plain-JS float64 forward with n_layer=%i (within 1e-4)', (nLayer) => {
    const m = CausalLM.create({ ...SMALL, n_layer: nLayer, n_inner: 12 }, 3);
    randomizeWeights(m, 99 + nLayer);
    const w = weightsOf(m);
    const seqs = [
      [0, 5, 12, 3, 3, 7],
      [11, 1, 2, 9, 4, 0],
    ];
    const { logits, hidden } = m.forward(seqs);
    const lg = logits.arraySync();
    const hd = hidden.arraySync();
    for (let b = 0; b < seqs.length; b++) {
      const ref = referenceForward(m.config as GPT2Config, w, seqs[b]!);
      expect(maxAbsDiff(lg[b]!.flat(), ref.logits.flat())).toBeLessThan(1e-4);
      expect(maxAbsDiff(hd[b]!.flat(), ref.hidden.flat())).toBeLessThan(1e-4);
      // The check is meaningful: logits vary across the vocabulary.
      expect(Math.max(...ref.logits[0]!) - Math.min(...ref.logits[0]!)).toBeGreaterThan(0.5);
    }
    logits.dispose();
    hidden.dispose();
    m.dispose();
  });

  it('scale_attn_weights=false matches the reference', () => {
    const m = CausalLM.create({ ...SMALL, scale_attn_weights: false }, 3);
    randomizeWeights(m, 5);
    const { logits, hidden } = m.forward([[1, 2, 3, 4]]);
    const ref = referenceForward(m.config as GPT2Config, weightsOf(m), [1, 2, 3, 4]);
    expect(maxAbsDiff(logits.arraySync()[0]!.flat(), ref.logits.flat())).toBeLessThan(1e-4);
    tf.dispose([logits, hidden]);
    m.dispose();
  });

  const seqs = [[3, 1, 4, 1, 5], [9, 2, 6], [5]];
  const PAD = 0;

  function unpaddedLogits(): number[][][] {
    return seqs.map((s) => {
      const { logits, hidden } = model.forward([s]);
      const out = logits.arraySync()[0]!;
      tf.dispose([logits, hidden]);
      return out;
    });
  }

  it.each(['left', 'right'] as const)('%s padding gives the unpadded logits at real positions', (side) => {
    const want = unpaddedLogits();
    const Tm = Math.max(...seqs.map((s) => s.length));
    const ids = seqs.map((s) => {
      const pad = new Array<number>(Tm - s.length).fill(PAD);
      return side === 'left' ? [...pad, ...s] : [...s, ...pad];
    });
    const mask = seqs.map((s) => {
      const pad = new Array<number>(Tm - s.length).fill(0);
      const real = new Array<number>(s.length).fill(1);
      return side === 'left' ? [...pad, ...real] : [...real, ...pad];
    });
    const maskT = tf.tensor2d(mask, undefined, 'int32');
    const { logits, hidden } = model.forward(ids, { attentionMask: maskT });
    const lg = logits.arraySync();
    for (let b = 0; b < seqs.length; b++) {
      const off = side === 'left' ? Tm - seqs[b]!.length : 0;
      for (let t = 0; t < seqs[b]!.length; t++) {
        expect(maxAbsDiff(lg[b]![off + t]!, want[b]![t]!)).toBeLessThan(1e-4);
      }
    }
    // Padded positions are finite (fully masked query rows must not be NaN).
    expect(lg.flat(2).every(Number.isFinite)).toBe(true);
    expect(maskT.isDisposed).toBe(false); // the caller's mask is not consumed
    tf.dispose([logits, hidden, maskT]);
  });

  it('without a mask, padding tokens are attended to (the mask is what makes padding work)', () => {
    const want = unpaddedLogits();
    const { logits, hidden } = model.forward([[PAD, PAD, 9, 2, 6]]);
    const got = rowsAt(logits, 0, [4]);
    expect(maxAbsDiff(got[0]!, want[1]![2]!)).toBeGreaterThan(1e-3);
    tf.dispose([logits, hidden]);
  });

  it('explicit positionIds equal the derived ones', () => {
    const ids = [
      [PAD, PAD, 9, 2, 6],
      [3, 1, 4, 1, 5],
    ];
    const attentionMask = [
      [0, 0, 1, 1, 1],
      [1, 1, 1, 1, 1],
    ];
    const a = model.forward(ids, { attentionMask });
    const b = model.forward(ids, {
      attentionMask,
      positionIds: [
        [0, 0, 0, 1, 2],
        [0, 1, 2, 3, 4],
      ],
    });
    expect(maxAbsDiff(a.logits.dataSync(), b.logits.dataSync())).toBe(0);
    tf.dispose([a.logits, a.hidden, b.logits, b.hidden]);
  });

  it.each(['no mask at decode', 'new-token mask', 'full mask'] as const)(
    'KV-cached decoding equals the full forward at every step (batch 3, left-padded prompts; %s)',
    (maskMode) => {
      const prompts = [[3, 1, 4, 1], [9, 2], [5]];
      const Tp = 4;
      const ids = prompts.map((p) => [...new Array<number>(Tp - p.length).fill(PAD), ...p]);
      const mask = prompts.map((p) => [
        ...new Array<number>(Tp - p.length).fill(0),
        ...new Array<number>(p.length).fill(1),
      ]);
      const steps = [
        [7, 8, 9],
        [1, 12, 2],
        [0, 0, 11],
        [6, 5, 4],
        [10, 3, 8],
      ];
      const first = model.forward(ids, { attentionMask: mask, useCache: true });
      let cache = first.cache!;
      expect(cache.length).toBe(Tp);
      const fullIds = ids.map((r) => [...r]);
      const fullMask = mask.map((r) => [...r]);
      // Prefill logits equal the uncached forward.
      const ref0 = model.forward(fullIds, { attentionMask: fullMask });
      expect(maxAbsDiff(first.logits.dataSync(), ref0.logits.dataSync())).toBeLessThan(1e-4);
      tf.dispose([first.logits, first.hidden, ref0.logits, ref0.hidden]);

      for (const step of steps) {
        step.forEach((tok, b) => {
          fullIds[b]!.push(tok);
          fullMask[b]!.push(1);
        });
        const opts =
          maskMode === 'no mask at decode'
            ? { cache }
            : maskMode === 'new-token mask'
              ? { cache, attentionMask: step.map(() => [1]) }
              : { cache, attentionMask: fullMask };
        const next = model.forward(
          step.map((t) => [t]),
          opts,
        );
        const ref = model.forward(fullIds, { attentionMask: fullMask });
        const T = fullIds[0]!.length;
        const refLast = tf.tidy(() => tf.slice(ref.logits, [0, T - 1, 0], [3, 1, 13]));
        expect(next.logits.shape).toEqual([3, 1, 13]);
        expect(maxAbsDiff(next.logits.dataSync(), refLast.dataSync())).toBeLessThan(1e-4);
        const refHidden = tf.tidy(() => tf.slice(ref.hidden, [0, T - 1, 0], [3, 1, 8]));
        expect(maxAbsDiff(next.hidden.dataSync(), refHidden.dataSync())).toBeLessThan(1e-4);
        expect(next.cache!.length).toBe(T);
        expect(Array.from(next.cache!.nextPosition.dataSync())).toEqual(
          fullMask.map((r) => r.reduce((a, c) => a + c, 0)),
        );
        cache.dispose();
        cache = next.cache!;
        tf.dispose([next.logits, next.hidden, ref.logits, ref.hidden, refLast, refHidden]);
      }
      cache.dispose();
    },
  );

  it('the unpadded fast path (no mask) equals an all-ones mask, with and without a cache', () => {
    const ids = [
      [3, 1, 4, 1, 5, 9],
      [2, 6, 5, 3, 5, 8],
    ];
    const ones = ids.map((r) => r.map(() => 1));
    const a = model.forward(ids);
    const b = model.forward(ids, { attentionMask: ones });
    expect(maxAbsDiff(a.logits.dataSync(), b.logits.dataSync())).toBeLessThan(1e-5);
    // Dense prefill, then a dense step, then a masked step (leaves the fast path mid-way).
    const pre = model.forward(
      ids.map((r) => r.slice(0, 4)),
      { useCache: true },
    );
    expect(pre.cache!.dense).toBe(true);
    const s1 = model.forward(
      ids.map((r) => [r[4]!]),
      { cache: pre.cache! },
    );
    const s2 = model.forward(
      ids.map((r) => [r[5]!]),
      { cache: s1.cache!, attentionMask: [[1], [1]] },
    );
    expect(s2.cache!.dense).toBe(false);
    const last = (t: tf.Tensor3D, col: number) =>
      tf.tidy(() => tf.slice(t, [0, col, 0], [2, 1, 13]).dataSync());
    expect(maxAbsDiff(s1.logits.dataSync(), last(a.logits, 4))).toBeLessThan(1e-4);
    expect(maxAbsDiff(s2.logits.dataSync(), last(a.logits, 5))).toBeLessThan(1e-4);
    expect(Array.from(s2.cache!.nextPosition.dataSync())).toEqual([6, 6]);
    for (const r of [a, b, pre, s1, s2]) {
      tf.dispose([r.logits, r.hidden]);
      r.cache?.dispose();
    }
  });

  it('continuing a cache by chunks of several tokens equals the full forward (dense and padded)', () => {
    const seqs = [
      [3, 1, 4, 1, 5, 9, 2, 6],
      [2, 7, 1, 8, 2, 8, 1, 8],
    ];
    const full = model.forward(seqs);
    const cols = (t: tf.Tensor3D, from: number, n: number) =>
      tf.tidy(() => tf.slice(t, [0, from, 0], [2, n, 13]).dataSync());
    // Dense: prefill 3, then chunks of 3 and 1 and 1 (causal bias offset by the cache; no bias at T = 1).
    let pos = 0;
    let cache: KVCache | undefined;
    for (const n of [3, 3, 1, 1]) {
      const chunk = seqs.map((r) => r.slice(pos, pos + n));
      const out = model.forward(chunk, cache ? { cache } : { useCache: true });
      expect(out.cache!.dense).toBe(true);
      expect(
        maxAbsDiff(out.logits.dataSync(), cols(full.logits, pos, n)),
        `dense chunk at ${pos}`,
      ).toBeLessThan(1e-4);
      cache?.dispose();
      cache = out.cache!;
      tf.dispose([out.logits, out.hidden]);
      pos += n;
    }
    expect(Array.from(cache!.nextPosition.dataSync())).toEqual([8, 8]);
    expect(Array.from(cache!.mask.dataSync())).toEqual(new Array<number>(16).fill(1));
    cache!.dispose();
    // Padded: row 0 left-padded by 2; prefill with a mask, then chunks without one (all new tokens real).
    const padded = [[0, 0, ...seqs[0]!.slice(0, 6)], seqs[1]!];
    const mask = [[0, 0, 1, 1, 1, 1, 1, 1], new Array<number>(8).fill(1)];
    const ref = model.forward(padded, { attentionMask: mask });
    const pre = model.forward(
      padded.map((r) => r.slice(0, 4)),
      { attentionMask: mask.map((r) => r.slice(0, 4)), useCache: true },
    );
    const mid = model.forward(
      padded.map((r) => r.slice(4, 7)),
      { cache: pre.cache! },
    );
    const last = model.forward(
      padded.map((r) => r.slice(7, 8)),
      { cache: mid.cache! },
    );
    expect(mid.cache!.dense).toBe(false);
    expect(maxAbsDiff(mid.logits.dataSync(), cols(ref.logits, 4, 3))).toBeLessThan(1e-4);
    expect(maxAbsDiff(last.logits.dataSync(), cols(ref.logits, 7, 1))).toBeLessThan(1e-4);
    expect(Array.from(last.cache!.nextPosition.dataSync())).toEqual([6, 8]);
    for (const r of [full, ref, pre, mid, last]) {
      tf.dispose([r.logits, r.hidden]);
      r.cache?.dispose();
    }
  });

  it('a kept cache can be continued twice (forward does not consume it)', () => {
    const pre = model.forward([[1, 2, 3]], { useCache: true });
    const a = model.forward([[4]], { cache: pre.cache! });
    const b = model.forward([[4]], { cache: pre.cache! });
    expect(maxAbsDiff(a.logits.dataSync(), b.logits.dataSync())).toBe(0);
    for (const r of [pre, a, b]) {
      tf.dispose([r.logits, r.hidden]);
      r.cache!.dispose();
    }
  });

  it('forwardHidden equals forward().hidden', () => {
    const a = model.forward([[1, 2, 3]]);
    const b = model.forwardHidden([[1, 2, 3]]);
    expect(maxAbsDiff(a.hidden.dataSync(), b.hidden.dataSync())).toBe(0);
    expect('logits' in b).toBe(false);
    tf.dispose([a.logits, a.hidden, b.hidden]);
  });

  it('rejects bad inputs with messages naming them', () => {
    expect(() => model.forward(tf.tensor2d([[1, 2]], [1, 2], 'float32'))).toThrow(
      /inputIds must be an int32/,
    );
    expect(() => model.forward([[1, 2]], { attentionMask: [[1, 1, 1]] })).toThrow(
      /attentionMask has shape \[1, 3\]/,
    );
    expect(() => model.forward([[1, 2]], { positionIds: [[0]] })).toThrow(/positionIds has shape/);
    expect(() => model.forward([new Array<number>(17).fill(1)])).toThrow(/exceeds n_positions=16/);
    const pre = model.forward([[1, 2]], { useCache: true });
    expect(() => model.forward([[1], [2]], { cache: pre.cache! })).toThrow(/cache has batch size 1/);
    pre.cache!.dispose();
    expect(() => model.forward([[1]], { cache: pre.cache! })).toThrow(/was disposed/);
    tf.dispose([pre.logits, pre.hidden]);
  });

  it('does not leak across repeated forwards and cached decoding', async () => {
    const mask = tf.tensor2d(
      [
        [0, 1, 1],
        [1, 1, 1],
      ],
      undefined,
      'int32',
    );
    await assertNoLeaks(
      () => {
        const r = model.forward(
          [
            [0, 1, 2],
            [3, 4, 5],
          ],
          { attentionMask: mask },
        );
        tf.dispose([r.logits, r.hidden]);
      },
      { label: 'forward' },
    );
    await assertNoLeaks(
      () => {
        const pre = model.forward(
          [
            [0, 1, 2],
            [3, 4, 5],
          ],
          { attentionMask: mask, useCache: true },
        );
        tf.dispose([pre.logits, pre.hidden]);
        let cache = pre.cache!;
        for (let i = 0; i < 3; i++) {
          const next = model.forward([[i], [i + 1]], { cache });
          tf.dispose([next.logits, next.hidden]);
          cache.dispose();
          cache = next.cache!;
        }
        cache.dispose();
      },
      { label: 'cached decoding' },
    );
    mask.dispose();
  });

  it('gradients reach every parameter (finite, non-zero somewhere)', async (ctx) => {
    if (backend === 'wasm' && tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
      // The embedding-gather gradient needs UnsortedSegmentSum, registered by @relign/tensor's wasm kernels.
      ctx.skip();
    }
    const ids = tf.tensor2d(
      [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
      ],
      undefined,
      'int32',
    );
    const targets = tf.oneHot(tf.tensor1d([2, 3, 4, 5, 6, 7, 8, 9], 'int32'), 13);
    const { value, grads } = tf.variableGrads(() =>
      tf.tidy(() => {
        const { logits } = model.forward(ids, {
          attentionMask: [
            [0, 1, 1, 1],
            [1, 1, 1, 1],
          ],
        });
        return tf.losses.softmaxCrossEntropy(targets, tf.reshape(logits, [8, 13])) as tf.Scalar;
      }),
    );
    const names = new Map([...model.variables()].map(([n, v]) => [v.name, n]));
    expect(Object.keys(grads).length).toBe(model.variables().size);
    for (const [tfName, g] of Object.entries(grads)) {
      const d = g.dataSync();
      expect(d.every(Number.isFinite), names.get(tfName)).toBe(true);
      expect(
        d.some((x) => x !== 0),
        names.get(tfName),
      ).toBe(true);
    }
    tf.dispose([value, ids, targets, ...Object.values(grads)]);
  });
});

describe('CausalLM (backend-independent)', () => {
  beforeAll(() => useBackend('cpu'));

  it('is deterministic under the seed and follows GPT-2 init', () => {
    const a = CausalLM.create(SMALL, 42);
    const b = CausalLM.create(SMALL, 42);
    const c = CausalLM.create(SMALL, 43);
    const wa = weightsOf(a);
    const wb = weightsOf(b);
    const wc = weightsOf(c);
    for (const [n, v] of wa) expect(Array.from(v), n).toEqual(Array.from(wb.get(n)!));
    expect(maxAbsDiff(wa.get('wte.weight')!, wc.get('wte.weight')!)).toBeGreaterThan(0);
    const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    expect(std(wa.get('wte.weight')!)).toBeCloseTo(0.02, 2);
    expect(std(wa.get('h.0.attn.c_proj.weight')!)).toBeCloseTo(0.02 / Math.sqrt(4), 2);
    expect(Array.from(wa.get('h.1.ln_2.weight')!)).toEqual(new Array(8).fill(1));
    expect(Array.from(wa.get('h.1.mlp.c_fc.bias')!)).toEqual(new Array(32).fill(0));
    expect(a.numParameters()).toBe(
      13 * 8 + 16 * 8 + 2 * (4 * 8 + 8 * 24 + 24 + 8 * 8 + 8 + 8 * 32 + 32 + 32 * 8 + 8) + 16,
    );
    [a, b, c].forEach((m) => m.dispose());
  });

  it('clone({trainable:false}) is an independent frozen copy', () => {
    const m = CausalLM.create(SMALL, 1);
    const ref = m.clone({ trainable: false });
    expect(ref.trainableVariables().size).toBe(0);
    expect([...ref.variables().values()].every((v) => !v.trainable)).toBe(true);
    expect(m.trainableVariables().size).toBe(m.variables().size);
    const before = ref.forward([[1, 2, 3]]);
    const orig = m.forward([[1, 2, 3]]);
    expect(maxAbsDiff(before.logits.dataSync(), orig.logits.dataSync())).toBe(0);
    // Changing the original does not change the clone.
    randomizeWeights(m, 5);
    const after = ref.forward([[1, 2, 3]]);
    expect(maxAbsDiff(before.logits.dataSync(), after.logits.dataSync())).toBe(0);
    const changed = m.forward([[1, 2, 3]]);
    expect(maxAbsDiff(changed.logits.dataSync(), after.logits.dataSync())).toBeGreaterThan(1e-3);
    // Disposing the original leaves the clone usable.
    m.dispose();
    const again = ref.forward([[1, 2, 3]]);
    expect(maxAbsDiff(again.logits.dataSync(), after.logits.dataSync())).toBe(0);
    for (const r of [before, orig, after, changed, again]) tf.dispose([r.logits, r.hidden]);
    ref.dispose();
    expect(() => m.forward([[1]])).toThrow(/disposed/);
  });

  it('variable names never collide, even with names taken by another copy of this module', () => {
    // Another copy (e.g. the CJS build next to the ESM one) has its own counter starting at 0.
    const squatters = Array.from({ length: 200 }, (_, i) =>
      tf.tidy(() => tf.variable(tf.scalar(0), false, `relign_gpt2_${i}/wte.weight`)),
    );
    const m = CausalLM.create(SMALL, 0);
    expect(m.variables().get('wte.weight')!.name).toMatch(/^relign_gpt2_\d+\/wte\.weight$/);
    m.dispose();
    squatters.forEach((v) => v.dispose());
  });

  it('create validates the config, naming the field', () => {
    expect(() => CausalLM.create({ ...SMALL, n_head: 3 })).toThrow(
      /n_head \(3\) does not divide n_embd \(8\)/,
    );
  });

  it('parameterCount matches the allocated model; create refuses a size that cannot fit, before allocating', () => {
    const m = CausalLM.create(SMALL, 0);
    expect(parameterCount(m.config)).toBe(m.numParameters());
    const wide = CausalLM.create({ ...SMALL, n_inner: 20 }, 0);
    expect(parameterCount(wide.config)).toBe(wide.numParameters());
    [m, wide].forEach((x) => x.dispose());
    const before = tf.memory().numTensors;
    expect(() => CausalLM.create({ ...SMALL, vocab_size: 2 ** 40 })).toThrow(
      /CausalLM\.create: config: .* most of it comes from "vocab_size": 1099511627776/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
