// Benchmark of the GPT-2 causal LM (forward, training step, KV-cached decoding) on the active tfjs backend.
// `benchModel(lm)` takes the built @relign/lm module object; the bench CLI selects the backend first.
// Reference figures for the same models: /work/shared/notes/tfjs-on-node.md ("Reference figures").
import * as tf from '@tensorflow/tfjs-core';

const B = 16;
const T = 64;
const NEW_TOKENS = 64;
const PROMPT = 8;

export const MODEL_BENCH_CONFIGS = [
  { name: 'tiny-l4', config: { vocab_size: 256, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 } },
  { name: 'tiny-l2', config: { vocab_size: 256, n_positions: 128, n_embd: 128, n_layer: 2, n_head: 4 } },
];

/** Median of a list of numbers. */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Times `fn` (async, must sync with the device itself) `iters` times after `warmup` calls; returns ms each. */
async function timeIt(fn, { warmup = 1, iters = 3 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const ms = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms;
}

function randomIds(rows, cols, vocab, seed) {
  let s = seed >>> 0;
  const data = new Int32Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s % vocab;
  }
  return tf.tensor2d(data, [rows, cols], 'int32');
}

async function benchForward(model, ids) {
  const ms = await timeIt(async () => {
    const { logits, hidden } = model.forward(ids);
    await logits.data();
    tf.dispose([logits, hidden]);
  });
  return { ms: median(ms), tokensPerSec: (B * T) / (median(ms) / 1000) };
}

async function benchTrain(model, ids, vocab) {
  const optimizer = tf.train.adam(1e-3);
  const varList = [...model.trainableVariables().values()];
  // Next-token cross-entropy: logits[:, :-1] against ids[:, 1:].
  const labels = tf.tidy(() => tf.oneHot(tf.reshape(tf.slice(ids, [0, 1], [B, T - 1]), [-1]), vocab));
  const loss = () =>
    tf.tidy(() => {
      const { logits } = model.forward(ids);
      const shifted = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, vocab]), [-1, vocab]);
      return tf.losses.softmaxCrossEntropy(labels, shifted);
    });
  try {
    const ms = await timeIt(
      async () => {
        const cost = optimizer.minimize(loss, true, varList);
        await cost.data();
        cost.dispose();
      },
      { warmup: 2, iters: 3 },
    );
    return { ms: median(ms) };
  } finally {
    labels.dispose();
    optimizer.dispose();
  }
}

async function benchDecode(model, vocab) {
  const prompt = randomIds(B, PROMPT, vocab, 7);
  const run = async () => {
    const pre = model.forward(prompt, { useCache: true });
    let cache = pre.cache;
    let next = tf.tidy(() =>
      tf.cast(
        tf.reshape(tf.argMax(tf.slice(pre.logits, [0, PROMPT - 1, 0], [B, 1, vocab]), 2), [B, 1]),
        'int32',
      ),
    );
    tf.dispose([pre.logits, pre.hidden]);
    await next.data();
    const t0 = performance.now();
    for (let i = 0; i < NEW_TOKENS; i++) {
      const out = model.forward(next, { cache });
      cache.dispose();
      cache = out.cache;
      next.dispose();
      next = tf.tidy(() => tf.cast(tf.argMax(out.logits, 2), 'int32'));
      tf.dispose([out.logits, out.hidden]);
    }
    await next.data(); // one sync at the end, as a sampler that collects tokens on device would
    const ms = performance.now() - t0;
    next.dispose();
    cache.dispose();
    return ms;
  };
  await run(); // warmup
  const ms = [await run(), await run()];
  prompt.dispose();
  return { ms: median(ms), tokensPerSec: (B * NEW_TOKENS) / (median(ms) / 1000) };
}

/**
 * @param lm the @relign/lm module (needs `CausalLM`).
 * @returns { backend, batch, seqLen, newTokens, configs: { [name]: { params, forward, train, decode } } };
 *   a measurement that throws (e.g. a missing kernel) is reported as `{ error }`.
 */
export async function benchModel(lm) {
  const result = { backend: tf.getBackend(), batch: B, seqLen: T, newTokens: NEW_TOKENS, configs: {} };
  for (const { name, config } of MODEL_BENCH_CONFIGS) {
    const model = lm.CausalLM.create(config, 0);
    const ids = randomIds(B, T, config.vocab_size, 1);
    const entry = { params: model.numParameters() };
    const attempt = async (key, fn) => {
      try {
        entry[key] = await fn();
      } catch (err) {
        entry[key] = { error: String(err?.message ?? err).split('\n')[0] };
      }
    };
    const tensorsBefore = tf.memory().numTensors;
    await attempt('forward', () => benchForward(model, ids));
    await attempt('train', () => benchTrain(model, ids, config.vocab_size));
    await attempt('decode', () => benchDecode(model, config.vocab_size));
    entry.leakedTensors = tf.memory().numTensors - tensorsBefore;
    ids.dispose();
    model.dispose();
    result.configs[name] = entry;
  }
  return result;
}
