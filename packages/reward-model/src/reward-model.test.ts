import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readdir, rm as remove, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM } from '@relign/lm';
import { createRng, readSafetensors } from '@relign/tensor';
import { assertNoLeaks, TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REWARD_STATS_FILE } from './normalizer.js';
import { RewardModel } from './reward-model.js';
import { TINY_RM_CONFIG, wordTokenizer } from './test-fixtures.js';

/** Overwrites every parameter with N(0, 0.3²) (LayerNorm gains 1 + N), so scores vary across inputs. */
function randomize(rm: RewardModel, seed: number): void {
  const rng = createRng(seed);
  for (const [name, v] of rm.variables()) {
    const data = Float32Array.from({ length: v.size }, () => rng.normal(0, 0.3));
    if (/ln_\d\.weight$|ln_f\.weight$/.test(name))
      for (let i = 0; i < data.length; i++) data[i] = 1 + data[i]!;
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
}

// Mixed lengths; id 0 is EOS = PAD, and appears inside and at the end of rows.
const SEQS = [
  [2, 3, 6, 12, 0],
  [2, 4, 7, 18, 19, 8, 13, 0],
  [5, 0, 9],
  [2, 3, 6, 12, 0, 0],
  [14],
  [2, 11, 7, 20, 21, 22, 23, 10, 9, 15, 0],
];

describe.each(TEST_BACKENDS)('RewardModel on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rm-model-'));
  });
  afterAll(async () => {
    await remove(dir, { recursive: true, force: true });
  });

  it('gives the same scores for left- and right-padded batches and any pad id, as for each row alone', async () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, { seed: 3 });
    randomize(rm, 4);
    const alone: number[] = [];
    for (const s of SEQS) alone.push((await rm.scoreSequences([s]))[0]!);
    const right = await rm.scoreSequences(SEQS, { padding: 'right' });
    const left = await rm.scoreSequences(SEQS, { padding: 'left' });
    const otherPad = await rm.scoreSequences(SEQS, { padding: 'left', padId: 17 });
    const chunks = await rm.scoreSequences(SEQS, { batchSize: 4, padding: 'right', padId: 9 });
    for (let i = 0; i < SEQS.length; i++) {
      expect(right[i]).toBeCloseTo(alone[i]!, 4);
      expect(left[i]).toBeCloseTo(alone[i]!, 4);
      expect(otherPad[i]).toBeCloseTo(alone[i]!, 4);
      expect(chunks[i]).toBeCloseTo(alone[i]!, 4);
    }
    // The scores are not trivially equal: the invariance above is not vacuous.
    const spread = Math.max(...alone) - Math.min(...alone);
    expect(spread).toBeGreaterThan(0.1);
    // The trailing EOS (= pad id) is read, not skipped: SEQS[0] and SEQS[3] differ only by one more 0.
    expect(Math.abs(alone[0]! - alone[3]!)).toBeGreaterThan(1e-4);
    rm.dispose();
  });

  it('scores text as prompt + response + EOS, matching the token path', async () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, { seed: 3, tokenizer: wordTokenizer });
    randomize(rm, 5);
    const prompts = ['the food was', 'the movie is'];
    const responses = ['good and nice', 'awful'];
    const text = await rm.score(prompts, responses);
    const enc = (s: string) => wordTokenizer.encode(s);
    const tokens = await rm.score(
      prompts.map(enc),
      responses.map((r) => [...enc(r), 0]),
    );
    expect(Array.from(text)).toEqual(Array.from(tokens));
    // endedWithEos: false → no EOS appended.
    const cut = await rm.score(prompts, responses, { endedWithEos: [false, true] });
    const noEos = await rm.scoreSequences([[...enc(prompts[0]!), ...enc(responses[0]!)]]);
    expect(cut[0]).toBeCloseTo(noEos[0]!, 5);
    expect(cut[1]).toBeCloseTo(text[1]!, 5);
    rm.dispose();
  });

  it('saves and loads in the LM folder layout with the head and the normalisation statistics', async () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, {
      seed: 6,
      bias: true,
      normalizer: { normalize: true, clip: 4 },
    });
    randomize(rm, 7);
    rm.normalizer.process([0.5, 1.5, -2, 3]);
    rm.normalizer.process([7, 1]);
    const out = join(dir, 'rm-a');
    await rm.save(out);
    expect((await readdir(out)).sort()).toEqual(['config.json', 'model.safetensors', REWARD_STATS_FILE]);
    const file = await readSafetensors(join(out, 'model.safetensors'));
    expect(file.tensors.get('score.weight')!.shape).toEqual([1, TINY_RM_CONFIG.n_embd]);
    expect(file.tensors.get('score.bias')!.shape).toEqual([1]);

    const back = await RewardModel.fromPretrained(out);
    expect(back.normalizer.toJSON()).toEqual(rm.normalizer.toJSON());
    expect(back.normalizer.options).toEqual({
      scale: true,
      normalize: true,
      clip: 4,
      clipOrder: 'after-scaling',
    });
    expect(back.head.bias).toBeDefined();
    expect(Array.from(await back.scoreSequences(SEQS))).toEqual(Array.from(await rm.scoreSequences(SEQS)));
    // Processing the next batch gives the same numbers: the statistics really were restored.
    expect(Array.from(back.normalizer.process([2, -1]))).toEqual(Array.from(rm.normalizer.process([2, -1])));

    // The backbone alone loads with the LM's loader (the head is an extra tensor).
    const lm = await CausalLM.fromPretrained(out, { strict: false });
    expect(lm.dims.hiddenSize).toBe(TINY_RM_CONFIG.n_embd);
    lm.dispose();
    await expect(CausalLM.fromPretrained(out)).rejects.toThrow(
      /unexpected tensors: score\.bias, score\.weight/,
    );
    back.dispose();
    rm.dispose();
  });

  it('loads a folder without statistics with a fresh normaliser, and reports broken ones', async () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, { seed: 1 });
    const out = join(dir, 'rm-b');
    await rm.save(out);
    await writeFile(join(out, REWARD_STATS_FILE), '{"version": 1, "options": {}, "moments": {"mean": "x"}}');
    await expect(RewardModel.fromPretrained(out)).rejects.toThrow(/reward_stats\.json: field "moments"/);
    await unlink(join(out, REWARD_STATS_FILE));
    const back = await RewardModel.fromPretrained(out, { normalizer: { scale: false } });
    expect(back.normalizer.options.scale).toBe(false);
    expect(back.normalizer.moments.count).toBeLessThan(1e-20);
    expect(back.head.bias).toBeUndefined(); // bias-free by default (docs/algorithms.md §2.2)
    back.dispose();
    // A plain LM folder has no head.
    const lmDir = join(dir, 'lm-only');
    await rm.backbone.save(lmDir);
    await expect(RewardModel.fromPretrained(lmDir)).rejects.toThrow(/no tensor score\.weight/);
    rm.dispose();
  });

  it('wraps an existing backbone and owns it', async () => {
    const lm = CausalLM.create(TINY_RM_CONFIG, 2);
    const rm = RewardModel.fromBackbone(lm, { seed: 2 });
    expect(rm.trainableVariables().has('score.weight')).toBe(true);
    expect(rm.trainableVariables().has('wte.weight')).toBe(true);
    rm.dispose();
    expect(lm.isDisposed).toBe(true);
    await expect(rm.scoreSequences([[1]])).rejects.toThrow(/disposed/);
  });

  it('rejects rows it cannot score, naming them', async () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, { seed: 1 });
    const long = Array.from({ length: 20 }, () => 2);
    await expect(rm.scoreSequences([[2], long])).rejects.toThrow(
      /row 1 has 20 tokens but n_positions=16.*truncation: 'left'/,
    );
    await expect(rm.scoreSequences([[2, 99]])).rejects.toThrow(
      /row 0 token 1 is 99, outside the vocabulary \[0, 24\)/,
    );
    await expect(rm.scoreSequences([[]])).rejects.toThrow(/row 0 is empty/);
    await expect(rm.score(['a'], ['b'])).rejects.toThrow(/text inputs need a tokenizer/);
    rm.dispose();

    const cut = RewardModel.create(TINY_RM_CONFIG, { seed: 1, truncation: 'left' });
    expect((await cut.scoreSequences([long]))[0]).toBeCloseTo(
      (await cut.scoreSequences([long.slice(4)]))[0]!,
      6,
    );
    cut.dispose();
  });

  it('does not leak tensors when scoring', async () => {
    const rm = RewardModel.create(TINY_RM_CONFIG, { seed: 1, tokenizer: wordTokenizer });
    await assertNoLeaks(() => rm.scoreSequences(SEQS, { batchSize: 4, padding: 'left' }), {
      label: 'scoreSequences',
    });
    await assertNoLeaks(() => rm.score(['the food was'], ['good']), { label: 'RewardModel.score' });
    rm.dispose();
  });
});
