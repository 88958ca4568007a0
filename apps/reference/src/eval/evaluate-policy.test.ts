import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM, trainBpe, type BpeTokenizer } from '@relign/lm';
import { rewardFunction, RewardModel } from '@relign/reward-model';
import { generate } from '@relign/rollout';
import { TEST_BACKENDS, assertNoLeaks, useBackend } from '@relign/tensor/testing';
import { evaluatePolicy, type EvaluatePolicyOptions } from './evaluate-policy.js';
import { goldLabeler, judgeLabeler } from './labelers.js';
import { distinctN, repetition, textTokens } from './text-metrics.js';
import { winRate } from './win-rate.js';

const TEXTS = ['The food was', 'I loved the', 'Service is', 'This movie', 'Not a good', 'Great phone'];

function setup(): { tok: BpeTokenizer; sft: CausalLM; policy: CausalLM } {
  // Byte-level vocabulary (256 bytes + EOS): no merges needed for a test.
  const tok = trainBpe(TEXTS, { vocabSize: 257 });
  const cfg = { vocab_size: tok.vocabSize, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2 };
  const sft = CausalLM.create(cfg, 0, { trainable: false });
  // A different, peakier policy: scaled (tied) embeddings sharpen the next-token distribution, so the KL
  // to SFT is far from 0.
  const policy = CausalLM.create(cfg, 1, { trainable: false });
  const wte = policy.variables().get('wte.weight')!;
  tf.tidy(() => wte.assign(tf.mul(wte, 40)));
  return { tok, sft, policy };
}

describe.each(TEST_BACKENDS)('evaluatePolicy (%s)', (backend) => {
  let tok: BpeTokenizer;
  let sft: CausalLM;
  let policy: CausalLM;
  let base: Omit<EvaluatePolicyOptions, 'name' | 'algo' | 'step' | 'policy'>;

  beforeAll(async () => {
    await useBackend(backend);
    ({ tok, sft, policy } = setup());
    base = {
      sft,
      // Token-input proxy: the response length in tokens (stop token included), so proxy == length.
      proxy: rewardFunction(
        (_p: readonly number[] | Int32Array, r: readonly number[] | Int32Array) => r.length,
        {
          inputKind: 'tokens',
          name: 'length',
        },
      ),
      gold: goldLabeler(),
      judge: judgeLabeler(),
      tokenizer: tok,
      prompts: { tokens: TEXTS.map((t) => tok.encode(t)), texts: TEXTS },
      generation: { maxNewTokens: 6, stopTokenIds: [tok.eosId], temperature: 1 },
      seed: 7,
      batchSize: 4,
    };
  });
  afterAll(() => {
    sft.dispose();
    policy.dispose();
  });

  it('greedyGold: gold scores the greedy answers, goldSampled the sampled ones', async () => {
    // Gold = the first response token's id: deterministic, so the greedy answers' gold is known exactly.
    const gold = rewardFunction(
      (_p: readonly number[] | Int32Array, r: readonly number[] | Int32Array) => r[0]!,
      { inputKind: 'tokens', name: 'first token' },
    );
    // SFT (a random, flat model): its samples differ from its greedy answers.
    const o = { ...base, gold, name: 'sft', algo: 'sft', step: 0, policy: sft };
    const { result, samples } = await evaluatePolicy({ ...o, greedyGold: true });
    const argmax = await generate(sft, base.prompts.tokens, {
      ...base.generation,
      temperature: 0,
      responsesPerPrompt: 1,
      seed: 0,
    });
    const greedy = Array.from(
      { length: argmax.batchSize },
      (_, b) => argmax.responseTokens[b * argmax.responseWidth]!,
    );
    expect(result.gold.mean).toBeCloseTo(greedy.reduce((a, b) => a + b, 0) / greedy.length, 12);
    expect(result.goldSampled!.mean).toBeCloseTo(
      samples.reduce((a, r) => a + r.gold, 0) / samples.length,
      12,
    );
    // The sampled answers differ from the greedy ones (else this test could not tell them apart).
    expect(samples.map((r) => r.gold)).not.toEqual(greedy);
    const plain = await evaluatePolicy(o);
    expect(plain.result.goldSampled).toBeUndefined();
    expect(plain.result.gold).toEqual(result.goldSampled);
  });

  it('evaluates SFT itself: KL exactly 0, win rate ½, scores consistent with the samples', async () => {
    const { result, samples } = await evaluatePolicy({
      ...base,
      name: 'sft',
      algo: 'sft',
      step: 0,
      policy: sft,
    });
    expect(result.n).toBe(TEXTS.length);
    expect(samples.map((s) => s.prompt)).toEqual(TEXTS);
    expect(result.klToSft).toEqual({ mean: 0, std: 0 });
    expect(result.winRates.vsSft).toEqual({ proxy: 0.5, judge: 0.5 });
    for (const s of samples) {
      expect(s.proxy).toBe(s.length);
      expect(s.length).toBeGreaterThanOrEqual(1);
      expect(s.length).toBeLessThanOrEqual(6);
      if (!s.eos) expect(s.length).toBe(6);
      const [g] = await goldLabeler().score([s.prompt], [s.response]);
      expect(s.gold).toBe(g);
    }
    const lengths = samples.map((s) => s.length);
    expect(result.length.mean).toBeCloseTo(lengths.reduce((a, b) => a + b, 0) / lengths.length, 12);
    expect(result.proxy.mean).toBeCloseTo(result.length.mean, 6);
    expect(result.eosRate).toBe(samples.filter((s) => s.eos).length / samples.length);
    const words = samples.map((s) => textTokens(s.response));
    expect(result.distinct1).toBe(distinctN(words, 1));
    expect(result.distinct2).toBe(distinctN(words, 2));
    expect(result.repetition).toBe(repetition(words, 2));
    expect(result.name).toBe('sft');
    expect(result.seconds).toBeGreaterThan(0);
  });

  it('is deterministic under the seed and the same whether SFT samples are given or re-sampled', async () => {
    const sftEval = await evaluatePolicy({ ...base, name: 'sft', algo: 'sft', step: 0, policy: sft });
    const a = await evaluatePolicy({
      ...base,
      name: 'x',
      algo: 'ppo-max',
      step: 3,
      policy,
      baseline: sftEval,
    });
    const b = await evaluatePolicy({ ...base, name: 'x', algo: 'ppo-max', step: 3, policy });
    expect({ ...a.result, seconds: 0 }).toEqual({ ...b.result, seconds: 0 });
    expect(a.samples).toEqual(b.samples);
    expect(a.result.winRates.vsSft).toEqual({
      proxy: winRate(
        a.samples.map((s) => s.proxy),
        sftEval.samples.map((s) => s.proxy),
      ),
      judge: winRate(
        a.samples.map((s) => s.judge),
        sftEval.samples.map((s) => s.judge),
      ),
    });
    expect(a.result.klToSft.mean).not.toBe(0);
    // Another seed samples differently.
    const c = await evaluatePolicy({
      ...base,
      seed: 8,
      name: 'x',
      algo: 'ppo-max',
      step: 3,
      policy,
      baseline: sftEval,
    });
    expect(c.samples.map((s) => s.response)).not.toEqual(a.samples.map((s) => s.response));
  });

  it('KL to SFT is an unbiased estimate of the exact KL (one-token responses)', async () => {
    // One prompt repeated N times, one new token, no stop token: each sample's k1 term is
    // log p(y) − log q(y) with y ~ p, whose mean converges to KL(p‖q) = Σ_v p_v (log p_v − log q_v).
    const N = 384;
    const ids = tok.encode('The food was');
    const { result } = await evaluatePolicy({
      ...base,
      name: 'kl',
      algo: 'test',
      step: 1,
      policy,
      prompts: {
        tokens: Array.from({ length: N }, () => ids),
        texts: Array.from({ length: N }, () => 'The food was'),
      },
      generation: { maxNewTokens: 1, stopTokenIds: [], temperature: 1 },
      batchSize: 128,
      baseline: {
        samples: Array.from({ length: N }, () => ({ prompt: 'The food was', proxy: 0, judge: 0 })),
      },
    });
    const exact = tf.tidy(() => {
      const last = (m: CausalLM) =>
        tf.logSoftmax(
          tf.squeeze(
            tf.slice(
              m.forward(tf.tensor2d([ids], undefined, 'int32')).logits,
              [0, ids.length - 1, 0],
              [1, 1, -1],
            ),
          ),
        );
      const lp = last(policy);
      const lq = last(sft);
      return tf.sum(tf.mul(tf.exp(lp), tf.sub(lp, lq))).dataSync()[0]!;
    });
    expect(exact).toBeGreaterThan(0.2); // the test is about a real divergence
    const se = result.klToSft.std / Math.sqrt(N);
    expect(Math.abs(result.klToSft.mean - exact)).toBeLessThan(4 * se + 1e-4);
  });

  it('scores with a learned reward model (token input) and leaks no tensors', async () => {
    const rm = RewardModel.create(sft.config, { seed: 3 });
    try {
      const opts = { ...base, proxy: rm, name: 'p', algo: 'dpo', step: 2, policy };
      const { samples, result } = await evaluatePolicy(opts);
      expect(new Set(samples.map((s) => s.proxy)).size).toBeGreaterThan(1);
      expect(Number.isFinite(result.proxy.mean)).toBe(true);
      await assertNoLeaks(() => evaluatePolicy(opts).then(() => undefined), {
        warmup: 1,
        iterations: 2,
        label: 'evaluatePolicy',
      });
    } finally {
      rm.dispose();
    }
  });

  it('rejects bad options with errors naming the field', async () => {
    const o = { ...base, name: 'p', algo: 'dpo', step: 0, policy };
    await expect(evaluatePolicy({ ...o, generation: { ...o.generation, topK: 5 } })).rejects.toThrow(
      /topK\/topP must be off/,
    );
    await expect(evaluatePolicy({ ...o, generation: { ...o.generation, temperature: 0 } })).rejects.toThrow(
      /temperature must be > 0/,
    );
    await expect(
      evaluatePolicy({ ...o, prompts: { tokens: o.prompts.tokens, texts: TEXTS.slice(1) } }),
    ).rejects.toThrow(/prompts.tokens has 6 prompts but prompts.texts has 5/);
    await expect(evaluatePolicy({ ...o, name: 'a/b' })).rejects.toThrow(
      /name must be a non-empty string without slashes/,
    );
    await expect(evaluatePolicy({ ...o, step: -1 })).rejects.toThrow(/step must be an integer >= 0/);
    await expect(evaluatePolicy({ ...o, batchSize: 0 })).rejects.toThrow(/batchSize must be an integer >= 1/);
    await expect(
      evaluatePolicy({
        ...o,
        baseline: { samples: TEXTS.map((t, i) => ({ prompt: i === 2 ? 'other' : t, proxy: 0, judge: 0 })) },
      }),
    ).rejects.toThrow(/baseline sample 2 answers "other" but prompt 2 is "Service is"/);
    await expect(evaluatePolicy({ ...o, baseline: { samples: [] } })).rejects.toThrow(
      /baseline has 0 samples but there are 6 prompts/,
    );
  });
});
