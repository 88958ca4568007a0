import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CausalLM } from '@relign/lm';
import { createRng, readSafetensors, writeSafetensors } from '@relign/tensor';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutBatch } from './batch.js';
import { generate } from './generate.js';
import { ReplayBuffer, type RolloutScores } from './replay-buffer.js';
import { computeLogprobs, truncationSupport } from './scoring.js';
import { testModel } from './test-helpers.js';

const PAD = 0;

/** A random valid batch of `groups` prompts × G responses (ragged lengths), and scores for it. */
function makeBatch(
  groups: number,
  G: number,
  seed: number,
  policyVersion = 0,
  fields: { ref?: boolean; values?: boolean } = { ref: true },
): { batch: RolloutBatch; scores: RolloutScores } {
  const rng = createRng(seed);
  const B = groups * G;
  const Tp = 5;
  const Tr = 6;
  const promptTokens = new Int32Array(B * Tp).fill(PAD);
  const promptLengths = new Int32Array(B);
  const responseTokens = new Int32Array(B * Tr).fill(PAD);
  const responseLengths = new Int32Array(B);
  const logprobs = new Float32Array(B * Tr);
  const ref = new Float32Array(B * Tr);
  const values = new Float32Array(B * Tr);
  const endedWithEos = new Uint8Array(B);
  for (let g = 0; g < groups; g++) {
    const lp = 1 + rng.int(Tp);
    const prompt = Array.from({ length: lp }, () => 1 + rng.int(40));
    for (let j = 0; j < G; j++) {
      const b = g * G + j;
      promptTokens.set(prompt, b * Tp + Tp - lp);
      promptLengths[b] = lp;
      const lr = 1 + rng.int(Tr);
      responseLengths[b] = lr;
      endedWithEos[b] = lr < Tr ? 1 : 0;
      for (let t = 0; t < lr; t++) {
        responseTokens[b * Tr + t] = 1 + rng.int(40);
        logprobs[b * Tr + t] = -rng.uniform() * 3;
        ref[b * Tr + t] = -rng.uniform() * 3;
        values[b * Tr + t] = rng.normal();
      }
    }
  }
  const batch: RolloutBatch = {
    batchSize: B,
    responsesPerPrompt: G,
    promptWidth: Tp,
    responseWidth: Tr,
    promptTokens,
    promptLengths,
    responseTokens,
    responseLengths,
    logprobs,
    endedWithEos,
    truncated: endedWithEos.map((e) => 1 - e),
    groupIds: Int32Array.from({ length: B }, (_, b) => Math.floor(b / G)),
    options: {
      maxNewTokens: Tr,
      temperature: 1,
      topK: 0,
      topP: 1,
      stopTokenIds: [PAD],
      responsesPerPrompt: G,
      seed,
      padTokenId: PAD,
    },
    policyVersion,
  };
  const scores: RolloutScores = { rewards: Array.from({ length: B }, () => rng.normal()) };
  if (fields.ref) scores.refLogprobs = ref;
  if (fields.values) scores.values = values;
  return { batch, scores };
}

/** Row b of a batch as plain data, independent of padding widths. */
function row(batch: RolloutBatch & { refLogprobs?: Float32Array }, b: number) {
  const { promptWidth: Tp, responseWidth: Tr } = batch;
  const lp = batch.promptLengths[b]!;
  const lr = batch.responseLengths[b]!;
  return {
    prompt: [...batch.promptTokens.subarray(b * Tp + Tp - lp, (b + 1) * Tp)],
    response: [...batch.responseTokens.subarray(b * Tr, b * Tr + lr)],
    logprobs: [...batch.logprobs.subarray(b * Tr, b * Tr + lr)],
    ref: batch.refLogprobs ? [...batch.refLogprobs.subarray(b * Tr, b * Tr + lr)] : undefined,
    eos: batch.endedWithEos[b],
  };
}

describe('ReplayBuffer', () => {
  it('stores groups and gives them back as padded minibatches, rows of a group adjacent', () => {
    const buf = new ReplayBuffer({ capacity: 10, responsesPerPrompt: 2 });
    const { batch, scores } = makeBatch(5, 2, 1, 3);
    expect(buf.add(batch, scores)).toEqual({ added: 5, evicted: 0 });
    expect(buf.size).toBe(5);
    expect(buf.numResponses).toBe(10);
    const seen = new Set<number>();
    for (const mb of buf.minibatches(2, createRng(0))) {
      expect(mb.batchSize % 2).toBe(0);
      expect(mb.responsesPerPrompt).toBe(2);
      expect(mb.policyVersion).toBe(3);
      expect([...mb.policyVersions]).toEqual(new Array(mb.batchSize).fill(3));
      for (let b = 0; b < mb.batchSize; b++) {
        const serial = mb.groupIds[b]!;
        expect(mb.groupIds[b - (b % 2)]).toBe(serial); // never split: the pair shares rows 2k, 2k+1
        const orig = serial * 2 + (b % 2); // serials 0..4 are the batch's groups in order
        expect(row(mb, b)).toEqual(row({ ...batch, refLogprobs: scores.refLogprobs as Float32Array }, orig));
        expect(mb.rewards[b]).toBe((scores.rewards as number[])[orig]); // float64, exactly as added
        // Padding: left of prompts, right of responses (pad id, log-probs 0).
        const { promptWidth: Tp, responseWidth: Tr } = mb;
        expect(
          [...mb.promptTokens.subarray(b * Tp, b * Tp + Tp - mb.promptLengths[b]!)].every((v) => v === PAD),
        ).toBe(true);
        expect(
          [...mb.logprobs.subarray(b * Tr + mb.responseLengths[b]!, (b + 1) * Tr)].every((v) => v === 0),
        ).toBe(true);
      }
      for (let b = 0; b < mb.batchSize; b += 2) {
        expect(seen.has(mb.groupIds[b]!)).toBe(false);
        seen.add(mb.groupIds[b]!);
      }
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]); // an epoch visits every group once
  });

  it('shuffles minibatches with the given seed; dropLast skips a short last minibatch', () => {
    const buf = new ReplayBuffer({ capacity: 20, responsesPerPrompt: 2 });
    const { batch, scores } = makeBatch(10, 2, 2);
    buf.add(batch, scores);
    const order = (seed: number) =>
      [...buf.minibatches(3, createRng(seed))].map((mb) => [...mb.groupIds].filter((_, i) => i % 2 === 0));
    expect(order(1)).toEqual(order(1));
    expect(order(1)).not.toEqual(order(2));
    expect(order(1).map((m) => m.length)).toEqual([3, 3, 3, 1]);
    expect([...buf.minibatches(3, createRng(1), { dropLast: true })]).toHaveLength(3);
    expect(
      order(1)
        .flat()
        .sort((a, b) => a - b),
    ).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('evicts the oldest groups beyond its capacity and reports staleness', () => {
    const buf = new ReplayBuffer({ capacity: 5, responsesPerPrompt: 3 });
    expect(buf.staleness(0)).toBeNull();
    const a = makeBatch(2, 3, 1, 0);
    const b = makeBatch(2, 3, 2, 1);
    const c = makeBatch(3, 3, 3, 4);
    buf.add(a.batch, a.scores);
    buf.add(b.batch, b.scores);
    expect(buf.add(c.batch, c.scores)).toEqual({ added: 3, evicted: 2 });
    expect(buf.size).toBe(5);
    expect(buf.groups().map((g) => g.serial)).toEqual([2, 3, 4, 5, 6]);
    expect([...buf.policyVersions()]).toEqual([1, 1, 4, 4, 4]);
    expect(buf.staleness(6)).toEqual({
      oldestVersion: 1,
      newestVersion: 4,
      maxStaleness: 5,
      meanStaleness: (5 + 5 + 2 + 2 + 2) / 5,
    });
    buf.clear();
    expect(buf.size).toBe(0);
  });

  it('rejects bad records with errors naming the field, and adds nothing then', () => {
    const buf = new ReplayBuffer({ capacity: 8, responsesPerPrompt: 2 });
    const fresh = () => makeBatch(2, 2, 4);
    {
      const { batch, scores } = fresh();
      (scores.rewards as number[])[1] = NaN;
      expect(() => buf.add(batch, scores)).toThrow(/scores\.rewards\[1\] = NaN is not finite \(NaN reward\)/);
    }
    {
      const { batch, scores } = fresh();
      batch.responseLengths[2] = 7;
      expect(() => buf.add(batch, scores)).toThrow(
        /batch\.responseLengths\[2\] = 7 is outside \[1, responseWidth = 6\] \(length beyond the token array\)/,
      );
    }
    {
      const { batch, scores } = fresh();
      batch.promptLengths[0] = 6;
      expect(() => buf.add(batch, scores)).toThrow(
        /batch\.promptLengths\[0\] = 6 .*length beyond the token array/,
      );
    }
    {
      const { batch, scores } = makeBatch(2, 3, 5);
      expect(() => buf.add(batch, scores)).toThrow(
        /responsesPerPrompt is 3 but this buffer holds groups of 2 responses \(wrong group size\)/,
      );
    }
    {
      const { batch, scores } = fresh();
      batch.groupIds[1] = 1;
      expect(() => buf.add(batch, scores)).toThrow(
        /batch\.groupIds\[1\] = 1 differs from groupIds\[0\] = 0.*wrong group size/,
      );
    }
    {
      const { batch, scores } = fresh();
      batch.promptTokens[batch.promptWidth * 2 - 1]! += 1; // row 1's prompt differs from row 0's
      expect(() => buf.add(batch, scores)).toThrow(/row 1 has a different prompt from row 0/);
    }
    {
      const { batch, scores } = fresh();
      scores.rewards = [1, 2, 3];
      expect(() => buf.add(batch, scores)).toThrow(
        /scores\.rewards has 3 entries; its shape \[B\] = \[4\] needs 4/,
      );
    }
    {
      const { batch, scores } = fresh();
      (scores.refLogprobs as Float32Array)[0] = Infinity;
      expect(() => buf.add(batch, scores)).toThrow(/scores\.refLogprobs\[0, 0\] = Infinity is not finite/);
    }
    expect(buf.size).toBe(0);
    const ok = fresh();
    buf.add(ok.batch, ok.scores);
    const noRef = makeBatch(1, 2, 6, 0, {});
    expect(() => buf.add(noRef.batch, noRef.scores)).toThrow(
      /scores\.refLogprobs is missing but present in the groups already held/,
    );
    const hot = makeBatch(1, 2, 7);
    hot.batch.options.temperature = 0.5;
    expect(() => buf.add(hot.batch, hot.scores)).toThrow(/batch\.options\.temperature = 0\.5 differs from 1/);
    expect(() => new ReplayBuffer({ capacity: 0, responsesPerPrompt: 2 })).toThrow(
      /options\.capacity must be an integer >= 1/,
    );
  });

  describe('save / load', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'relign-buffer-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('round-trips every field exactly, and the serial numbers continue', async () => {
      const buf = new ReplayBuffer({ capacity: 6, responsesPerPrompt: 2 });
      for (let i = 0; i < 4; i++) {
        const { batch, scores } = makeBatch(2, 2, 10 + i, i, { ref: true, values: true });
        if (i === 2) batch.options.seed = 'other'; // a second distinct options object in the manifest
        buf.add(batch, scores);
      }
      await buf.save(join(dir, 'a'));
      await buf.save(join(dir, 'a')); // a second save replaces the first, leaving one data file
      const files = (await readdir(join(dir, 'a'))).sort();
      expect(files).toHaveLength(2);
      expect(files[0]).toMatch(/^buffer-[0-9a-f]+\.safetensors$/);
      expect(files[1]).toBe('buffer.json');
      const back = await ReplayBuffer.load(join(dir, 'a'));
      expect(back.capacity).toBe(6);
      expect(back.responsesPerPrompt).toBe(2);
      expect(back.groups()).toEqual(buf.groups());
      expect(back.groups()[2]!.options.seed).toBe('other');
      const next = makeBatch(1, 2, 20, 5, { ref: true, values: true });
      expect(back.add(next.batch, next.scores)).toEqual({ added: 1, evicted: 1 });
      expect(back.groups().at(-1)!.serial).toBe(8);
      const mbA = [...buf.minibatches(4, createRng(3))];
      const mbB = [...(await ReplayBuffer.load(join(dir, 'a'))).minibatches(4, createRng(3))];
      expect(mbB).toEqual(mbA);
    });

    it('keeps rewards in float64 through add, minibatches and save/load; reads files of earlier writers', async () => {
      // Non-integer rewards shifted by a large δ: float32 would make the pair difference 0.1953 (docs/algorithms.md §1.10).
      const buf = new ReplayBuffer({ capacity: 4, responsesPerPrompt: 2 });
      const { batch } = makeBatch(2, 2, 3);
      const rewards = [1e5 + 0.3, 1e5 + 0.1, -1e5 + 0.3, -1e5 + 0.1];
      buf.add(batch, { rewards });
      const diffs = (mb: { rewards: Float64Array }): number[] => [
        mb.rewards[0]! - mb.rewards[1]!,
        mb.rewards[2]! - mb.rewards[3]!,
      ];
      const [mb] = [...buf.minibatches(2, createRng(0))];
      expect(mb!.rewards).toBeInstanceOf(Float64Array);
      for (const d of diffs(mb!)) expect(Math.abs(d - 0.2)).toBeLessThan(1e-9);
      await buf.save(join(dir, 'f64'));
      const back = await ReplayBuffer.load(join(dir, 'f64'));
      expect([...back.groups().flatMap((g) => [...g.rewards])]).toEqual(rewards);

      // The rewards are one F64 tensor.
      const manifest = JSON.parse(await readFile(join(dir, 'f64', 'buffer.json'), 'utf8')) as {
        data: string;
      };
      const path = join(dir, 'f64', manifest.data);
      const file = await readSafetensors(path, { exact: true });
      expect(file.tensors.get('reward')).toMatchObject({ dtype: 'float64', shape: [2, 2] });
      expect(file.tensors.has('reward_f64')).toBe(false);

      // A file of the previous writer: F32 `reward` plus the float64 words in the I32 `reward_f64` [N, G, 2].
      const words = new Int32Array(new Float64Array(rewards).buffer.slice(0));
      file.tensors.set('reward', { dtype: 'float32', shape: [2, 2], data: Float32Array.from(rewards) });
      file.tensors.set('reward_f64', { dtype: 'int32', shape: [2, 2, 2], data: words });
      await writeSafetensors(path, file.tensors, file.metadata);
      const previous = await ReplayBuffer.load(join(dir, 'f64'));
      expect([...previous.groups().flatMap((g) => [...g.rewards])]).toEqual(rewards);

      // A file written before reward_f64 existed: the float32 `reward` is read.
      file.tensors.delete('reward_f64');
      await writeSafetensors(path, file.tensors, file.metadata);
      const old = await ReplayBuffer.load(join(dir, 'f64'));
      expect([...old.groups().flatMap((g) => [...g.rewards])]).toEqual(rewards.map(Math.fround));
    });

    it('round-trips an empty buffer', async () => {
      await new ReplayBuffer({ capacity: 3, responsesPerPrompt: 1 }).save(join(dir, 'empty'));
      const back = await ReplayBuffer.load(join(dir, 'empty'));
      expect(back.size).toBe(0);
      expect(back.capacity).toBe(3);
    });

    it('fails clearly on a missing or inconsistent directory', async () => {
      await expect(ReplayBuffer.load(join(dir, 'nope'))).rejects.toThrow(/cannot read .*buffer\.json/);
      const buf = new ReplayBuffer({ capacity: 4, responsesPerPrompt: 2 });
      const { batch, scores } = makeBatch(2, 2, 1);
      buf.add(batch, scores);
      await buf.save(join(dir, 'bad'));
      const manifest = JSON.parse(await readFile(join(dir, 'bad', 'buffer.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      await writeFile(
        join(dir, 'bad', 'buffer.json'),
        JSON.stringify({ ...manifest, responsesPerPrompt: 3 }),
      );
      await expect(ReplayBuffer.load(join(dir, 'bad'))).rejects.toThrow(
        /tensor "response_length" has 4 elements, expected \[2, 3\] = 6/,
      );
      await writeFile(join(dir, 'bad', 'buffer.json'), JSON.stringify({ ...manifest, numGroups: 3 }));
      await expect(ReplayBuffer.load(join(dir, 'bad'))).rejects.toThrow(
        /tensor "serial" has 2 elements, expected \[3\] = 3/,
      );
      await writeFile(join(dir, 'bad', 'buffer.json'), JSON.stringify({ ...manifest, version: 2 }));
      await expect(ReplayBuffer.load(join(dir, 'bad'))).rejects.toThrow(/unsupported "version" 2 \(number\)/);
      // A string "1" is not the number 1: the message prints both types.
      await writeFile(join(dir, 'bad', 'buffer.json'), JSON.stringify({ ...manifest, version: '1' }));
      await expect(ReplayBuffer.load(join(dir, 'bad'))).rejects.toThrow(
        /unsupported "version" "1" \(string\); this reader knows 1 \(number\)/,
      );
      await writeFile(
        join(dir, 'bad', 'buffer.json'),
        JSON.stringify({ ...manifest, data: 'buffer-00.safetensors' }),
      );
      await expect(ReplayBuffer.load(join(dir, 'bad'))).rejects.toThrow(/buffer-00\.safetensors/);
    });

    it('rejects values a save cannot hold, naming the tensor and the row', async () => {
      const buf = new ReplayBuffer({ capacity: 4, responsesPerPrompt: 2 });
      const { batch, scores } = makeBatch(2, 2, 1);
      buf.add(batch, scores);
      const at = join(dir, 'values');
      await buf.save(at);
      const { data } = JSON.parse(await readFile(join(at, 'buffer.json'), 'utf8')) as { data: string };
      // Exact: the F64 rewards must survive the rewrite.
      const original = await readSafetensors(join(at, data), { exact: true });
      // Writes the file with element `index` of tensor `name` set to `value`.
      const edit = async (name: string, index: number, value: number) => {
        const tensors = new Map(original.tensors);
        const t = tensors.get(name)!;
        const copy = t.data.slice() as Float32Array;
        copy[index] = value;
        tensors.set(name, { ...t, data: copy } as typeof t);
        await writeSafetensors(join(at, data), tensors, original.metadata);
      };
      await edit('response_tokens', 0, -3);
      await expect(ReplayBuffer.load(at)).rejects.toThrow(
        /response_tokens of group 0, response 0, position 0: token id -3 is out of range >= 0/,
      );
      await edit('prompt_tokens', 0, 50257);
      await expect(ReplayBuffer.load(at, { vocabSize: 41 })).rejects.toThrow(
        /prompt_tokens of group 0, position 0: token id 50257 is out of range \[0, 41\) \(the model's vocab_size\)/,
      );
      await edit('ended_with_eos', 3, 2);
      await expect(ReplayBuffer.load(at)).rejects.toThrow(
        /ended_with_eos of group 1, response 1 is 2; it must be 0 or 1/,
      );
      await edit('logprobs', 1, 0.5);
      await expect(ReplayBuffer.load(at)).rejects.toThrow(
        /logprobs of group 0, response \d, position \d: 0.5 is positive/,
      );
      await edit('ref_logprobs', 0, 2);
      await expect(ReplayBuffer.load(at)).rejects.toThrow(
        /ref_logprobs of group 0, response 0, position 0: 2 is positive/,
      );
      await writeSafetensors(join(at, data), original.tensors, original.metadata);
      expect((await ReplayBuffer.load(at, { vocabSize: 41 })).groups()).toEqual(buf.groups());
    });
  });
});

describe.each(TEST_BACKENDS)('generate -> buffer -> minibatch on %s', (backend) => {
  let model: CausalLM;
  beforeAll(async () => {
    await useBackend(backend);
    model = testModel(5);
  });
  afterAll(() => model.dispose());

  it('re-padded minibatches keep the exact sampling log-probs (ratio 1 within 1e-4)', async () => {
    const buf = new ReplayBuffer({ capacity: 16, responsesPerPrompt: 2 });
    const opts = {
      maxNewTokens: 8,
      temperature: 0.9,
      topK: 12,
      stopTokenIds: [0, 1, 2, 3],
      responsesPerPrompt: 2,
    };
    for (const [seed, prompts] of [
      [1, [[4, 5, 6, 7, 8, 9], [10]]],
      [
        2,
        [
          [11, 12],
          [13, 14, 15],
        ],
      ],
    ] as const) {
      const batch = await generate(
        model,
        prompts.map((p) => [...p]),
        { ...opts, seed, policyVersion: seed },
      );
      buf.add(batch, { rewards: new Float32Array(batch.batchSize).fill(seed) });
    }
    const mbs = [...buf.minibatches(3, createRng(9))];
    expect(mbs.map((m) => m.batchSize)).toEqual([6, 2]);
    for (const mb of mbs) {
      const lp = computeLogprobs(model, mb, {
        truncation: 'as-sampled',
        support: await truncationSupport(model, mb),
      });
      const got = lp.dataSync();
      lp.dispose();
      for (let b = 0; b < mb.batchSize; b++) {
        for (let t = 0; t < mb.responseLengths[b]!; t++) {
          const i = b * mb.responseWidth + t;
          expect(Math.abs(Math.exp(got[i]! - mb.logprobs[i]!) - 1)).toBeLessThan(1e-4);
        }
        expect(mb.rewards[b]).toBe(mb.policyVersions[b]);
      }
    }
  });
});
