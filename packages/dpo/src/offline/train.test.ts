import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { evaluateDpo } from './evaluate.js';
import { loadPreferencePairs } from './data.js';
import { computeReferenceLogprobs, ReferenceLogprobCache } from './reference-cache.js';
import { trainDpo, type OfflineDpoMetrics } from './train.js';
import { example, syntheticPairs, TINY_MODEL } from './test-fixtures.js';

const LN2 = Math.log(2);

function snapshot(model: CausalLM): Map<string, Float32Array> {
  return new Map([...model.variables()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
}

function sameParameters(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  }
  return true;
}

describe.each(TEST_BACKENDS)('trainDpo on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  const models: CausalLM[] = [];
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose();
  });
  /** The SFT model and a trainable copy of it (policy = reference at step 0). */
  const start = (seed = 5): { policy: CausalLM; reference: CausalLM } => {
    const reference = CausalLM.create(TINY_MODEL, seed, { trainable: false });
    const policy = reference.clone();
    models.push(policy, reference);
    return { policy, reference };
  };

  const train = syntheticPairs(64, 'train');
  const held = syntheticPairs(32, 'held-out');

  // Measured (identical on cpu and wasm): held-out accuracy 0 → 1.0, margin 0 → 2.95, loss 0.6931 → 0.064 after
  // 24 steps of 8 pairs (3 epochs of 64); ~2.8 s on cpu, ~1.2 s on wasm, of which the reference pass 0.2 / 0.04 s.
  it('raises the held-out implicit-reward accuracy from 0 to >= 0.9; the first step loss is ln 2', async () => {
    const { policy, reference } = start();
    const cache = new ReferenceLogprobCache();
    const heldRef = await computeReferenceLogprobs(reference, held, { padId: 0 });
    const before = await evaluateDpo(policy, held, heldRef, { padId: 0 });
    // Policy = reference: every implicit reward is 0, so no pair is ranked (accuracy 0) and the loss is ln 2.
    expect(before.accuracy).toBe(0);
    expect(before.loss).toBeCloseTo(LN2, 5);

    const log: OfflineDpoMetrics[] = [];
    const result = await trainDpo({
      policy,
      reference,
      pairs: train,
      evalPairs: held,
      padId: 0,
      loss: { beta: 0.1 },
      batchSize: 8,
      lr: 1e-2, // tiny model; the paper's 1e-6 is for billions of parameters
      warmupSteps: 4,
      epochs: 3,
      seed: 1,
      referenceCache: cache,
      onMetrics: (m) => log.push({ ...m }),
    });
    expect(result.steps).toBe(24);
    expect(result.skippedSteps).toBe(0);
    expect(result.reference.source).toBe('computed');
    // docs/algorithms.md §3.1 at θ = ref: h = 0 → −log σ(0) = ln 2 (S_θ and S_ref come from different batch layouts, so ~1e-6).
    expect(log[0]!['train/loss']).toBeCloseTo(LN2, 5);
    expect(log[0]!['rewards/accuracy']).toBe(0);
    expect(log[0]!['train/lr']).toBeCloseTo(1e-2 / 4, 10); // warm-up step 1 of 4

    const after = result.eval!;
    expect(after.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(after.margin).toBeGreaterThan(0.5);
    expect(after.loss).toBeLessThan(0.4);
    expect(log.at(-1)!['rewards/accuracy']).toBeGreaterThanOrEqual(0.9);
    // The final evaluation is the same function the test called before training.
    const again = await evaluateDpo(policy, held, heldRef, { padId: 0 });
    expect(again.accuracy).toBeCloseTo(after.accuracy, 6);
    expect(again.loss).toBeCloseTo(after.loss, 4);

    // A second run on the same data and reference reuses the cached reference sums.
    const p2 = reference.clone();
    models.push(p2);
    const second = await trainDpo({
      policy: p2,
      reference,
      pairs: train,
      padId: 0,
      batchSize: 8,
      lr: 1e-2,
      maxSteps: 1,
      referenceCache: cache,
    });
    expect(second.reference.source).toBe('memory');
  });

  it('cDPO, rDPO and IPO (per-token means) train from the tokenized JSONL format; identical pairs are skipped and counted', async () => {
    const words = ['<eos>', '<unk>', 'the', 'food', 'was', 'good', 'great', 'bad', 'awful'];
    const tokenizer = {
      encode: (t: string) =>
        t
          .split(/\s+/)
          .filter(Boolean)
          .map((w) => Math.max(1, words.indexOf(w))),
      eosId: 0,
      padId: 0,
    };
    const lines = [
      { prompt: 'the food was', chosen: 'good', rejected: 'bad' },
      { prompt: 'the food was', chosen: 'great great', rejected: 'awful' },
      { prompt: 'the food was', chosen: 'good', rejected: 'good' }, // identical text: skipped by the parser
      { prompt: 'the food was', chosen: 'yummy', rejected: 'tasty' }, // both <unk>: identical once tokenized
    ];
    const data = await loadPreferencePairs(
      { text: lines.map((l) => JSON.stringify(l)).join('\n') },
      tokenizer,
      { maxLength: 16 },
    );
    expect(data.pairs.length).toBe(2);
    expect(data.identicalLines).toEqual([3]);
    expect(data.identicalTokenized).toBe(1);

    for (const loss of [
      { lossType: 'sigmoid', labelSmoothing: 0.1 },
      { lossType: 'robust', labelSmoothing: 0.2 },
      { lossType: 'ipo', beta: 0.5 },
    ] as const) {
      const { policy, reference } = start();
      const log: OfflineDpoMetrics[] = [];
      const r = await trainDpo({
        policy,
        reference,
        pairs: data.pairs,
        padId: 0,
        loss,
        batchSize: 2,
        lr: 1e-2,
        warmupSteps: 0,
        maxSteps: 5,
        onMetrics: (m) => log.push(m),
      });
      expect(r.steps).toBe(5);
      // θ = ref at step 1: cDPO and rDPO are ln 2 at h = 0 (docs/algorithms.md §3.2); IPO is (0 − 1/(2β))² = 1.
      expect(log[0]!['train/loss']).toBeCloseTo(loss.lossType === 'ipo' ? 1 : LN2, 4);
      expect(log.at(-1)!['train/loss']).toBeLessThan(log[0]!['train/loss']!);
      expect(log.at(-1)!['rewards/accuracy']).toBe(1);
    }

    // Tokenized pairs given directly: identical ones are skipped with a warning and counted in the metrics.
    const { policy, reference } = start();
    const warnings: string[] = [];
    const same = example([12], [3, 4]);
    const r = await trainDpo({
      policy,
      reference,
      pairs: [...train.slice(0, 6), { chosen: same, rejected: example([12], [3, 4]) }],
      padId: 0,
      batchSize: 3,
      maxSteps: 2,
      onWarning: (m) => warnings.push(m),
      onMetrics: (m) => expect(m['data/identical_pairs']).toBe(1),
    });
    expect(r.identicalPairs).toBe(1);
    expect(r.pairs).toBe(6);
    expect(warnings).toEqual([
      expect.stringMatching(
        /skipped 1 training pair\(s\) whose chosen and rejected sequences are identical \(indices 6\)/,
      ),
    ]);
  });

  it('is deterministic for a seed, and leaks no tensors', async () => {
    const runOnce = async (): Promise<Map<string, Float32Array>> => {
      const { policy, reference } = start();
      await trainDpo({
        policy,
        reference,
        pairs: train.slice(0, 16),
        padId: 0,
        batchSize: 4,
        lr: 1e-2,
        epochs: 1,
        seed: 'x',
      });
      return snapshot(policy);
    };
    const a = await runOnce();
    const b = await runOnce();
    expect(sameParameters(a, b)).toBe(true);
    const { policy: c } = start();
    expect(sameParameters(a, snapshot(c))).toBe(false); // it trained

    const { policy, reference } = start();
    const cache = new ReferenceLogprobCache();
    await assertNoLeaks(
      () =>
        trainDpo({
          policy,
          reference,
          pairs: train.slice(0, 8),
          evalPairs: held.slice(0, 4),
          padId: 0,
          batchSize: 4,
          lr: 1e-3,
          maxSteps: 2,
          referenceCache: cache,
        }),
      { label: 'trainDpo', iterations: 2 },
    );
  });

  it('rejects bad options with messages naming the field', async () => {
    const { policy, reference } = start();
    const base = { policy, reference, pairs: train.slice(0, 4), padId: 0 };
    await expect(trainDpo({ ...base, reference: policy })).rejects.toThrow(/are the same model/);
    await expect(trainDpo({ ...base, loss: { beta: 0 } })).rejects.toThrow(
      /trainDpo: `beta` must be a finite number > 0/,
    );
    await expect(trainDpo({ ...base, loss: { labelSmoothing: 0.5 } })).rejects.toThrow(
      /`labelSmoothing` must be in \[0, 0\.5\)/,
    );
    await expect(trainDpo({ ...base, batchSize: 0 })).rejects.toThrow(
      /options\.batchSize must be an integer >= 1/,
    );
    await expect(trainDpo({ ...base, lr: -1 })).rejects.toThrow(/options\.lr must be a finite number > 0/);
    await expect(trainDpo({ ...base, maxSteps: 3, warmupSteps: 5 })).rejects.toThrow(
      /options\.warmupSteps must be an integer in \[0, total steps = 3\]/,
    );
    await expect(
      trainDpo({ ...base, pairs: [{ chosen: example([40], [1]), rejected: example([12], [2]) }] }),
    ).rejects.toThrow(
      /options\.pairs\[0\]\.chosen holds token id 40, outside the policy's vocabulary \[0, 32\)/,
    );
    const long = example(
      Array.from({ length: 20 }, () => 12),
      [1],
    );
    await expect(
      trainDpo({ ...base, pairs: [{ chosen: long, rejected: example([12], [2]) }] }),
    ).rejects.toThrow(/has 22 tokens; the policy takes at most n_positions = 16/);
    const same = example([12], [1]);
    await expect(
      trainDpo({ ...base, pairs: [{ chosen: same, rejected: same }], onWarning: () => {} }),
    ).rejects.toThrow(/no training pairs left \(1 given, 1 identical\)/);
  });
});
