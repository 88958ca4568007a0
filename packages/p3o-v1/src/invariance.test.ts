import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import { rewardFunction, type RewardFunction } from '@relign/reward-model';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { Trainer, type AlgorithmPlugin } from '@relign/core';
import plugin from './index.js';

/**
 * Invariance to reward translation, end to end (spec §1.10): a full training run (Trainer: generate → score →
 * reference log-probs → plugin.update, several iterations) with reward r and one with r + δ(prompt), δ large,
 * end with the same parameters. The runs share every seed, so as long as the updates agree the rollouts agree.
 */
const PROMPTS = [[1], [2, 3], [4], [5, 6], [7], [8, 9]];
const MODEL = { vocab_size: 16, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 };

/** r = how often token 3 appears; `shifted` adds δ = 100·promptId − 300 (promptId = index in PROMPTS). */
function reward(shifted: boolean): RewardFunction {
  const id = (p: ArrayLike<number>): number => {
    const i = PROMPTS.findIndex((q) => q.length === p.length && q.every((t, k) => t === p[k]));
    if (i < 0) throw new Error(`unknown prompt ${Array.from(p).join(' ')}`);
    return i;
  };
  return rewardFunction(
    (prompt, response) => {
      let r = 0;
      for (const t of response) if (t === 3) r++;
      return shifted ? r + 100 * id(prompt) - 300 : r;
    },
    { inputKind: 'tokens', name: shifted ? 'count-3-shifted' : 'count-3' },
  );
}

/** Parameters after a short run (lr 1e-2 so they move far from their initial values). */
async function run(
  shifted: boolean,
  config: Record<string, unknown>,
): Promise<{ initial: Map<string, Float32Array>; final: Map<string, Float32Array> }> {
  const policy = CausalLM.create(MODEL, 5);
  const initial = new Map([...policy.variables()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
  const trainer = new Trainer({
    policy,
    prompts: PROMPTS,
    reward: reward(shifted),
    plugin: plugin as unknown as AlgorithmPlugin,
    pluginConfig: { lr: 1e-2, epochs: 2, pairsPerMinibatch: 2, ...config },
    generation: { maxNewTokens: 6, stopTokenIds: [0] },
    promptsPerIteration: 4,
    iterations: 4,
    seed: 9,
  });
  try {
    await trainer.train();
    return {
      initial,
      final: new Map([...policy.variables()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array])),
    };
  } finally {
    trainer.dispose();
    policy.dispose();
  }
}

/** Largest per-tensor relative difference `max|a − b| / max(|a|, |b|)` over the parameters. */
function relativeDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < x.length; i++) {
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
      scale = Math.max(scale, Math.abs(x[i]!), Math.abs(y[i]!));
    }
    worst = Math.max(worst, diff / Math.max(scale, 1e-12));
  }
  return worst;
}

function maxAbsDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}

describe.each(TEST_BACKENDS)('p3o-v1 reward-translation invariance on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each([
    ['default reward processing', {}],
    ["rewardScaling 'pairwise-std'", { rewardScaling: 'pairwise-std' }],
  ])('r and r + δ(prompt) train to the same parameters (%s)', async (_label, config) => {
    const plain = await run(false, config);
    const shifted = await run(true, config);
    // Within float32 rounding (1e-5 relative); with integer rewards and shifts it is in fact bit-identical.
    expect(relativeDifference(plain.final, shifted.final)).toBeLessThanOrEqual(1e-5);
    // Not vacuous: training moved the parameters by far more than the tolerance (measured: max |Δθ| ≈ 0.09).
    expect(maxAbsDifference(plain.initial, plain.final)).toBeGreaterThan(1e-2);
  });

  it("is sensitive: the authors' raw-score clip (rewardClip 10) breaks the invariance for δ up to ±300", async () => {
    const plain = await run(false, { rewardClip: 10 });
    const shifted = await run(true, { rewardClip: 10 });
    expect(relativeDifference(plain.final, shifted.final)).toBeGreaterThan(1e-3); // measured ≈ 1.7
  });
});
