import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '@relign/tensor/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '../model/causal-lm.js';
import { bytesToUnicode } from '../tokenizer/byte-unicode.js';
import { BpeTokenizer, GPT2_EOS } from '../tokenizer/bpe-tokenizer.js';
import { pretrain } from './pretrain.js';

/** A byte-level tokenizer without merges (ids 0..255 = bytes, 256 = <|endoftext|>). */
function byteTokenizer(): BpeTokenizer {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((sym, i) => (vocab[sym] = i));
  vocab[GPT2_EOS] = 256;
  return BpeTokenizer.fromVocabAndMerges(vocab, [], { eos: GPT2_EOS });
}

const animals = ['cat', 'dog', 'cow', 'hen', 'fox'];
const doc = (i: number) => `the ${animals[i % 5]} sat on the mat. the ${animals[(i * 3) % 5]} ran.`;

describe('pretrain (wasm, tiny)', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'relign-pretrain-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('trains below the unigram baseline and writes a loadable model directory', async () => {
    const lines: string[] = [];
    const report = await pretrain({
      train: Array.from({ length: 60 }, (_, i) => doc(i)),
      heldOut: Array.from({ length: 6 }, (_, i) => doc(i + 100)),
      tokenizer: byteTokenizer(),
      model: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      batchSize: 8,
      lr: 1e-2,
      warmupSteps: 5,
      maxSteps: 60,
      evalEvery: 20,
      samplePrompts: ['', 'the'],
      sampleTokens: 12,
      outDir: dir,
      dataDescription: { note: 'synthetic' },
      log: (l) => lines.push(l),
    });
    expect(report.train.steps).toBe(60);
    expect(report.heldOut.perplexity).toBeLessThan(report.unigram.perplexity / 2);
    expect(report.samples.map((s) => s.prompt)).toEqual(['', 'the']);
    expect(report.samples[1]!.text.startsWith('the')).toBe(true);
    expect(report.tokenizer.eosId).toBe(256);
    expect(report.tokenizer.padId).toBe(256);
    expect(report.tokenizer.bosId).toBe(256);
    expect(lines.some((l) => l.includes('unigram baseline'))).toBe(true);

    expect((await readdir(dir)).sort()).toEqual([
      'config.json',
      'merges.txt',
      'model.safetensors',
      'special_tokens_map.json',
      'training.json',
      'vocab.json',
    ]);
    const record = JSON.parse(await readFile(join(dir, 'training.json'), 'utf8'));
    expect(record.steps).toBe(60);
    expect(record.heldOut.perplexity).toBeCloseTo(report.heldOut.perplexity, 10);
    expect(record.unigramBaseline.perplexity).toBeCloseTo(report.unigram.perplexity, 10);
    expect(record.data).toEqual({ note: 'synthetic' });
    expect(record.curve.some((p: { evalLoss?: number }) => p.evalLoss !== undefined)).toBe(true);

    const loaded = await CausalLM.fromPretrained(dir);
    expect(loaded.config.eos_token_id).toBe(256);
    const tok = await BpeTokenizer.fromDirectory(dir);
    expect(tok.eosId).toBe(256);
    const a = report.model.forward([[1, 2, 3]]);
    const b = loaded.forward([[1, 2, 3]]);
    expect(Array.from(b.logits.dataSync())).toEqual(Array.from(a.logits.dataSync()));
    for (const t of [a.logits, a.hidden, b.logits, b.hidden]) t.dispose();
    loaded.dispose();
    report.model.dispose();
  });

  it('trains its own BPE vocabulary by default, with <|endoftext|> as eos = pad = bos', async () => {
    const report = await pretrain({
      train: Array.from({ length: 40 }, (_, i) => doc(i)),
      heldOut: Array.from({ length: 4 }, (_, i) => doc(i + 100)),
      vocabSize: 280,
      model: { n_layer: 1, n_embd: 16, n_head: 2, n_positions: 16 },
      warmupSteps: 1,
      maxSteps: 2,
      samplePrompts: [],
    });
    const tok = report.tokenizer;
    expect(tok.vocabSize).toBe(280);
    expect([tok.eosId, tok.padId, tok.bosId]).toEqual([279, 279, 279]);
    expect(tok.encode(' the cat').length).toBeLessThan(' the cat'.length);
    expect(report.model.config.vocab_size).toBe(280);
    report.model.dispose();
  });

  it('scores heldOutBlocks of the held-out blocks (seeded), the unigram baseline on the same targets', async () => {
    const options = {
      train: Array.from({ length: 40 }, (_, i) => doc(i)),
      heldOut: Array.from({ length: 12 }, (_, i) => doc(i + 100)),
      tokenizer: byteTokenizer(),
      model: { n_layer: 1, n_embd: 16, n_head: 2, n_positions: 16 },
      warmupSteps: 1,
      maxSteps: 2,
      samplePrompts: [],
    };
    const all = await pretrain(options);
    const few = await pretrain({ ...options, heldOutBlocks: 3 });
    const again = await pretrain({ ...options, heldOutBlocks: 3 });
    const many = await pretrain({ ...options, heldOutBlocks: 10_000 });
    for (const r of [all, few, again, many]) r.model.dispose();
    // Packed 16-token blocks: 15 targets each.
    expect(all.heldOut.blocks).toBeGreaterThan(10);
    expect(all.heldOut.targets).toBe(15 * all.heldOut.blocks);
    expect(few.heldOut).toMatchObject({ blocks: 3, targets: 45 });
    expect(few.unigram.targets).toBe(45);
    expect(all.unigram.targets).toBe(all.heldOut.targets);
    expect(few.heldOut.loss).not.toBe(all.heldOut.loss);
    expect(again.heldOut).toEqual(few.heldOut);
    // A budget that covers every block is the default evaluation, to the bit.
    expect(many.heldOut).toEqual(all.heldOut);
    expect(many.unigram).toEqual(all.unigram);
    await expect(pretrain({ ...options, heldOutBlocks: 0 })).rejects.toThrow(
      /heldOutBlocks must be an integer >= 1 \(got 0\)/,
    );
  });

  it('validates its inputs', async () => {
    await expect(
      pretrain({ train: [], heldOut: ['x'], tokenizer: byteTokenizer(), maxSteps: 1 }),
    ).rejects.toThrow(/train must be a non-empty/);

    await expect(
      pretrain({
        train: ['ab'],
        heldOut: ['cd'],
        tokenizer: byteTokenizer(),
        maxSteps: 1,
        model: { n_positions: 32, n_embd: 8, n_head: 2, n_layer: 1 },
      }),
    ).rejects.toThrow(/not enough text for one 32-token block/);
  });
});
