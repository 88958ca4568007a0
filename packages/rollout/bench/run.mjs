// `npm run bench -w @relign/rollout`: sampling throughput of `generate` (prefill + KV-cached decode + host
// sampling with exact log-probs) on the active backend (RELIGN_BACKEND to choose), for batch sizes 1, 8, 16
// and 32 with 64 new tokens (no stop tokens, so every row decodes all 64), on the default model and on the
// `tiny-l4` config. One JSON object on stdout; progress on stderr.
//
// `modelOnly` is the same decode loop without rollout's work (device argmax, one read per step): the gap
// between it and `generate` is the cost of downloading [B, V] logits and sampling on the host.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, createRng } from '@relign/tensor';
import { CausalLM } from '@relign/lm';
import { generate } from '../dist/index.js';
import { benchEnvironment } from '../../../scripts/bench-env.mjs';

const BATCHES = [1, 8, 16, 32];
const NEW_TOKENS = 64;
const PROMPT_LEN = 8;

const DEFAULT_DIR = fileURLToPath(new URL('../../base-model/model', import.meta.url));
const DEFAULT_CONFIG = { vocab_size: 1024, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 };
const TINY_L4 = { vocab_size: 256, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function prompts(B, V, seed) {
  const rng = createRng(seed);
  return Array.from({ length: B }, () => Array.from({ length: PROMPT_LEN }, () => rng.int(V)));
}

async function timeMs(fn, iters) {
  await fn(); // warm-up (kernel setup, XNNPACK weight packing)
  const ms = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

/** The bare decode loop: prefill, then per step a forward and a device argmax, read back once per step. */
async function modelOnly(model, ps) {
  const B = ps.length;
  const V = model.config.vocab_size;
  const ids = tf.tensor2d(ps, [B, PROMPT_LEN], 'int32');
  const pre = model.forward(ids, { useCache: true });
  ids.dispose();
  let cache = pre.cache;
  let next = tf.tidy(() =>
    tf.cast(tf.argMax(tf.slice(pre.logits, [0, PROMPT_LEN - 1, 0], [B, 1, V]), 2), 'int32'),
  );
  tf.dispose([pre.logits, pre.hidden]);
  for (let i = 1; i < NEW_TOKENS; i++) {
    await next.data();
    const out = model.forward(next, { cache });
    cache.dispose();
    cache = out.cache;
    next.dispose();
    next = tf.tidy(() => tf.cast(tf.argMax(out.logits, 2), 'int32'));
    tf.dispose([out.logits, out.hidden]);
  }
  await next.data();
  next.dispose();
  cache.dispose();
}

async function benchModel(name, model, source) {
  const V = model.config.vocab_size;
  const rows = [];
  for (const B of BATCHES) {
    const ps = prompts(B, V, B);
    const iters = 5;
    const opts = {
      maxNewTokens: NEW_TOKENS,
      temperature: 1,
      stopTokenIds: [],
      responsesPerPrompt: 1,
      seed: 1,
    };
    const ms = await timeMs(() => generate(model, ps, opts), iters);
    const baseMs = await timeMs(() => modelOnly(model, ps), iters);
    const row = {
      batch: B,
      ms: Math.round(ms),
      tokensPerSec: Math.round((B * NEW_TOKENS) / (ms / 1000)),
      modelOnlyTokensPerSec: Math.round((B * NEW_TOKENS) / (baseMs / 1000)),
    };
    console.error(
      `bench: ${name} batch ${B}: ${row.tokensPerSec} tok/s (model only ${row.modelOnlyTokensPerSec})`,
    );
    rows.push(row);
  }
  return { source, config: model.config, params: model.numParameters(), batches: rows };
}

const backend = await initBackend();
const environment = await benchEnvironment(backend);
console.error(`bench: backend ${backend.name} (${backend.package}), threads ${environment.threads ?? '-'}`);
const results = {};
{
  const found = existsSync(`${DEFAULT_DIR}/config.json`) && existsSync(`${DEFAULT_DIR}/model.safetensors`);
  const model = found ? await CausalLM.fromPretrained(DEFAULT_DIR) : CausalLM.create(DEFAULT_CONFIG, 0);
  results.default = await benchModel(
    'default',
    model,
    found ? '@relign/base-model' : 'random init (base model not built yet)',
  );
  model.dispose();
}
{
  const model = CausalLM.create(TINY_L4, 0);
  results['tiny-l4'] = await benchModel('tiny-l4', model, 'random init');
  model.dispose();
}
console.log(
  JSON.stringify(
    {
      package: '@relign/rollout',
      backend: backend.name,
      environment,
      newTokens: NEW_TOKENS,
      promptLength: PROMPT_LEN,
      models: results,
      tensorsLeft: tf.memory().numTensors,
    },
    null,
    2,
  ),
);
