#!/usr/bin/env node
/**
 * `npm run demo` — the README's main job. Until the reference app (`relign run`) lands, it runs the part of
 * the default pipeline that exists, on the best available backend:
 *
 *   1. load relign's default base model (packages/lm/models/base) and sample from it;
 *   2. SFT it on review sentences (prompt: the first words of a sentence; completion: the rest);
 *   3. evaluate held-out loss before and after, and sample again from held-out prompts.
 *
 * Writes runs/demo/{summary.json,metrics.jsonl,sft-model/}. Options: --steps N (SFT steps, default 150),
 * --out DIR, --backend NAME (or RELIGN_BACKEND).
 */
import { mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRng, initBackend } from '@relign/tensor';
import {
  BpeTokenizer,
  CausalLM,
  evaluateLoss,
  loadReviewSentences,
  REVIEW_DATA_ATTRIBUTION,
  sampleTokens,
  sft,
  tokenizePromptCompletion,
} from '@relign/lm';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '150' },
    out: { type: 'string', default: join(root, 'runs', 'demo') },
    backend: { type: 'string' },
  },
});
const sftSteps = Number(args.steps);
if (!Number.isInteger(sftSteps) || sftSteps <= 0) {
  console.error(`--steps must be a positive integer (got ${args.steps})`);
  process.exit(2);
}
const out = resolve(args.out);
mkdirSync(out, { recursive: true });
const metricsPath = join(out, 'metrics.jsonl');
writeFileSync(metricsPath, '');

const stages = [];
async function stage(name, fn) {
  const t0 = performance.now();
  console.log(`\n== ${name}`);
  const result = await fn();
  const seconds = (performance.now() - t0) / 1000;
  stages.push({ stage: name, seconds: Number(seconds.toFixed(2)) });
  console.log(`   (${seconds.toFixed(1)} s)`);
  return result;
}

const backend = await stage('backend', async () => {
  const info = await initBackend(args.backend);
  console.log(`   active: ${info.name} (${info.package})`);
  for (const s of info.skipped) console.log(`   skipped ${s.package}: ${s.why}`);
  return info;
});

const baseDir = join(root, 'packages', 'lm', 'models', 'base');
const { model, tokenizer, baseReport } = await stage('load the default base model', async () => {
  const model = await CausalLM.fromPretrained(baseDir);
  const tokenizer = await BpeTokenizer.fromDirectory(baseDir);
  const baseReport = JSON.parse(readFileSync(join(baseDir, 'training.json'), 'utf8'));
  const c = model.config;
  console.log(
    `   ${model.numParameters()} parameters (n_layer ${c.n_layer}, n_embd ${c.n_embd}, n_head ${c.n_head}, ` +
      `n_positions ${c.n_positions}), vocabulary ${tokenizer.vocabSize}`,
  );
  return { model, tokenizer, baseReport };
});

// The default task's data: review sentences, split deterministically; prompts are the first words.
const PROMPT_WORDS = 3;
const toPair = (s) => {
  const words = s.text.split(/\s+/);
  return {
    prompt: words.slice(0, PROMPT_WORDS).join(' '),
    completion: ' ' + words.slice(PROMPT_WORDS).join(' '),
  };
};
const reviews = await loadReviewSentences({ seed: 0 });
const trainPairs = reviews.train.filter((s) => s.text.split(/\s+/).length > PROMPT_WORDS + 1).map(toPair);
const heldOutPairs = reviews.heldOut.filter((s) => s.text.split(/\s+/).length > PROMPT_WORDS + 1).map(toPair);
const heldOut = tokenizePromptCompletion(heldOutPairs, tokenizer, { maxLength: model.config.n_positions });
const samplePrompts = heldOutPairs.slice(0, 4).map((p) => p.prompt);

function samples(m, seed) {
  const rng = createRng(seed);
  return samplePrompts.map((prompt) => {
    const ids = sampleTokens(m, tokenizer.encode(prompt), {
      maxNewTokens: 24,
      temperature: 0.8,
      topK: 40,
      rng,
      eosId: tokenizer.eosId,
    });
    return prompt + tokenizer.decode(ids, { skipSpecial: true });
  });
}

const before = await stage('base model: held-out review loss and samples', async () => {
  const evalResult = evaluateLoss(model, heldOut.examples, { padId: tokenizer.padId });
  console.log(
    `   held-out review completions: loss ${evalResult.loss.toFixed(3)}, perplexity ${evalResult.perplexity.toFixed(1)}`,
  );
  const text = samples(model, 1);
  text.forEach((t) => console.log(`   > ${t}`));
  return { ...evalResult, samples: text };
});

const sftResult = await stage(`SFT on ${trainPairs.length} review sentences (${sftSteps} steps)`, async () =>
  sft(model, trainPairs, {
    tokenizer,
    batchSize: 16,
    lr: 1e-3,
    warmupSteps: 10,
    maxSteps: sftSteps,
    evalFraction: 0.05,
    evalEvery: Math.max(50, Math.floor(sftSteps / 3)),
    seed: 0,
    onMetrics: (m) => {
      appendFileSync(metricsPath, JSON.stringify({ stage: 'sft', ...m }) + '\n');
      if (m.step % 25 === 0 || m['eval/loss'] !== undefined) {
        const evalPart = m['eval/loss'] !== undefined ? `, eval ${m['eval/loss'].toFixed(3)}` : '';
        console.log(
          `   step ${m.step}: loss ${m['train/loss'].toFixed(3)}${evalPart}, ` +
            `${Math.round(m['train/tokens_per_s'])} tok/s`,
        );
      }
    },
  }),
);

const after = await stage('SFT model: held-out review loss and samples', async () => {
  const evalResult = evaluateLoss(model, heldOut.examples, { padId: tokenizer.padId });
  console.log(
    `   held-out review completions: loss ${evalResult.loss.toFixed(3)}, perplexity ${evalResult.perplexity.toFixed(1)}`,
  );
  const text = samples(model, 1);
  text.forEach((t) => console.log(`   > ${t}`));
  await model.save(join(out, 'sft-model'));
  await tokenizer.save(join(out, 'sft-model'));
  return { ...evalResult, samples: text };
});

const summary = {
  backend: backend.name,
  baseModel: {
    dir: baseDir,
    heldOutPerplexity: baseReport.heldOut?.perplexity,
    unigramPerplexity: baseReport.unigram?.perplexity,
  },
  heldOutReviews: {
    before: { loss: before.loss, perplexity: before.perplexity },
    after: { loss: after.loss, perplexity: after.perplexity },
  },
  sft: {
    steps: sftResult.steps,
    trainLoss: sftResult.trainLoss,
    evalLoss: sftResult.evalLoss,
    skippedSteps: sftResult.skippedSteps,
  },
  samples: { before: before.samples, after: after.samples },
  stages,
  data: REVIEW_DATA_ATTRIBUTION,
};
writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
model.dispose();

console.log('\n== stage timings');
for (const s of stages) console.log(`   ${s.stage.padEnd(60)} ${s.seconds.toFixed(1)} s`);
console.log(
  `\nheld-out review perplexity: ${before.perplexity.toFixed(1)} (base) -> ${after.perplexity.toFixed(1)} (SFT)`,
);
console.log(`wrote ${join(out, 'summary.json')}`);
if (!(after.loss < before.loss)) {
  console.error('demo: SFT did not lower the held-out loss');
  process.exit(1);
}
