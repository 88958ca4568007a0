// Benchmark of the GPT-2 causal LM (forward, training step, KV-cached decoding) on the active tfjs backend.
// `benchModel(lm)` takes the built @relign/lm module object; the bench CLI selects the backend first.
// Absolute figures of this run only: a comparison with PyTorch (or another backend) means running both on the
// same machine in one session, not dividing by figures measured elsewhere.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';

const B = 16;
const T = 64;
const NEW_TOKENS = 64;
const PROMPT = 8;
const DECODE_WARMUP = 6;
const DECODE_RUNS = 5;

export const MODEL_BENCH_CONFIGS = [
  {
    name: 'tiny-l4',
    config: { vocab_size: 256, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 },
  },
  {
    name: 'tiny-l2',
    config: { vocab_size: 256, n_positions: 128, n_embd: 128, n_layer: 2, n_head: 4 },
  },
  // The default base model's shape (@relign/base-model, the model the demo trains), random weights.
  { name: 'base-model', config: baseModelShape() },
];

function baseModelShape() {
  const file = new URL('../../base-model/model/config.json', import.meta.url);
  const { vocab_size, n_positions, n_embd, n_layer, n_head } = JSON.parse(readFileSync(file, 'utf8'));
  return { vocab_size, n_positions, n_embd, n_layer, n_head };
}

/** Kernels that do the matrix products, and the KV-cache append. */
const MATMUL_KERNELS = new Set(['BatchMatMul', '_FusedMatMul']);
const COPY_KERNELS = new Set(['Concat']);
/** A whole block of a decode step in one kernel (GPT-2 on wasm): its products, attention and the rest. */
const BLOCK_KERNELS = new Set(['RelignGpt2DecodeBlock']);

/** Median of a list of numbers. */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x, digits = 1) => Number(x.toFixed(digits));

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

/**
 * Runs `fn` with every top-level kernel dispatch counted and timed (synchronous backends: the time is the
 * kernel's; nested dispatches are charged to the outer one). @returns { kernels: [{ name, ms }], result }.
 */
function withKernelLog(fn) {
  const engine = tf.engine();
  const original = engine.runKernel;
  const kernels = [];
  let depth = 0;
  engine.runKernel = function (name, inputs, attrs) {
    if (depth > 0) return original.call(this, name, inputs, attrs);
    depth++;
    const t0 = performance.now();
    try {
      return original.call(this, name, inputs, attrs);
    } finally {
      kernels.push({ name, ms: performance.now() - t0 });
      depth--;
    }
  };
  try {
    return { result: fn(), kernels };
  } finally {
    engine.runKernel = original;
  }
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

/**
 * Greedy decoding of NEW_TOKENS tokens for B prompts of PROMPT tokens with the KV cache, one sync at the end
 * (as a sampler that keeps tokens on the device). Then one more decode with every kernel of the model's
 * forward logged, for the per-step kernel count and where the time goes (the log's own cost is excluded
 * from the reported speed).
 */
async function benchDecode(model, vocab) {
  const prompt = randomIds(B, PROMPT, vocab, 7);
  const run = async (log) => {
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
      let out;
      if (log) {
        const logged = withKernelLog(() => model.forward(next, { cache }));
        out = logged.result;
        log.push(...logged.kernels);
      } else {
        out = model.forward(next, { cache });
      }
      cache.dispose();
      cache = out.cache;
      next.dispose();
      next = tf.tidy(() => tf.cast(tf.argMax(out.logits, 2), 'int32'));
      tf.dispose([out.logits, out.hidden]);
    }
    await next.data();
    const ms = performance.now() - t0;
    next.dispose();
    cache.dispose();
    return ms;
  };
  // Warm-up: V8 keeps optimizing tfjs's JS (engine, op wrappers) over the first few hundred forwards (measured:
  // the 1st decode ~2.5x and the 2nd-6th ~1.3x slower than the steady state).
  for (let i = 0; i < DECODE_WARMUP; i++) await run();
  const runs = [];
  for (let i = 0; i < DECODE_RUNS; i++) runs.push(await run());
  const ms = median(runs);
  const log = [];
  const loggedMs = await run(log);
  prompt.dispose();
  // Where the time goes, as shares of the logged run (whose kernels are timed), applied to the step time of
  // the unlogged runs.
  const stepMs = ms / NEW_TOKENS;
  const share = (pred) => log.filter((k) => pred(k.name)).reduce((s, k) => s + k.ms, 0) / loggedMs;
  const isMatmul = (n) => MATMUL_KERNELS.has(n);
  const isCopy = (n) => COPY_KERNELS.has(n);
  const isBlock = (n) => BLOCK_KERNELS.has(n);
  const count = (pred) => log.filter((k) => pred(k.name)).length / NEW_TOKENS;
  const matmulShare = share(isMatmul);
  const copyShare = share(isCopy);
  const blockShare = share(isBlock);
  const otherShare = share((n) => !isMatmul(n) && !isCopy(n) && !isBlock(n));
  return {
    ms,
    tokensPerSec: (B * NEW_TOKENS) / (ms / 1000),
    stepMs,
    kernelsPerStep: count(() => true),
    matmulKernelsPerStep: count(isMatmul),
    blockKernelsPerStep: count(isBlock),
    reshapesPerStep: count((n) => n === 'Reshape'),
    matmulMsPerStep: stepMs * matmulShare,
    blockMsPerStep: stepMs * blockShare,
    concatMsPerStep: stepMs * copyShare,
    otherKernelsMsPerStep: stepMs * otherShare,
    outsideKernelsMsPerStep: stepMs * Math.max(0, 1 - matmulShare - copyShare - blockShare - otherShare),
  };
}

/** Multiply-add FLOPs (2 per MAC) of the matrix products of one forward over `tokens` tokens of context `ctx`. */
function forwardFlops(config, tokens, ctx) {
  const { n_embd: D, n_layer: L, vocab_size: V } = config;
  const dense = 2 * tokens * (12 * D * D * L + D * V); // qkv 3D², proj D², mlp 8D² per layer; tied head
  const attention = 2 * 2 * tokens * ctx * D * L; // q k^T and p v
  return dense + attention;
}

/** What bounds each figure, from the measurements (see the bench's stdout JSON). */
function boundsOf(config, entry) {
  const parts = [];
  if (entry.trainStepMs !== undefined) {
    // Training: forward + backward (2x the forward's products) + AdamW; T = 64, causal context ~T/2 on average.
    const gflop = (3 * forwardFlops(config, B * T, T / 2)) / 1e9;
    parts.push(
      `train: matmul-bound, ${gflop.toFixed(2)} GFLOP per step at ${(gflop / (entry.trainStepMs / 1000)).toFixed(1)} ` +
        'GFLOP/s (wasm SIMD f32x4 without FMA, 1 thread; OpenBLAS uses AVX FMA)',
    );
  }
  const d = entry.decode;
  if (d && d.kernelsPerStep !== undefined) {
    const other = d.kernelsPerStep - d.matmulKernelsPerStep - d.blockKernelsPerStep;
    const avgCtx = PROMPT + NEW_TOKENS / 2;
    const gflop = forwardFlops(config, B, avgCtx) / 1e9;
    // With fused blocks the products are inside them: the GFLOP/s is over blocks and matmuls together.
    const productMs = d.matmulMsPerStep + d.blockMsPerStep;
    const blocks =
      d.blockKernelsPerStep > 0
        ? `${d.blockKernelsPerStep.toFixed(0)} fused blocks ${d.blockMsPerStep.toFixed(2)} ms and `
        : '';
    parts.push(
      `decode: ${d.kernelsPerStep.toFixed(0)} kernels per step (${d.reshapesPerStep.toFixed(0)} of them free ` +
        `reshapes) in ${d.stepMs.toFixed(2)} ms: ${blocks}${d.matmulKernelsPerStep.toFixed(0)} matmuls ` +
        `${d.matmulMsPerStep.toFixed(2)} ms (${(gflop / (productMs / 1000)).toFixed(1)} GFLOP/s at M = ${B}), ` +
        `KV-cache concat ${d.concatMsPerStep.toFixed(2)} ms (O(T) copy per layer), ` +
        `${other.toFixed(0)} other kernels ${d.otherKernelsMsPerStep.toFixed(2)} ms ` +
        `(~${((d.otherKernelsMsPerStep * 1000) / Math.max(other, 1)).toFixed(1)} us each: dispatch-bound), ` +
        `${d.outsideKernelsMsPerStep.toFixed(2)} ms outside kernels (tfjs op wrappers, tidy, greedy sampling)`,
    );
  }
  return parts.join('; ');
}

/**
 * @param lm the @relign/lm module (needs `CausalLM`).
 * @returns { backend, batch, seqLen, newTokens, promptTokens, configs: { [name]: { params,
 *   forwardTokensPerSec, trainStepMs, trainTokensPerSec, decodeTokensPerSec, bounds, forward, train, decode,
 *   leakedTensors } } }; a measurement that throws (e.g. a missing kernel) is reported as `{ error }`.
 */
export async function benchModel(lm) {
  const result = {
    backend: tf.getBackend(),
    batch: B,
    seqLen: T,
    newTokens: NEW_TOKENS,
    promptTokens: PROMPT,
    configs: {},
  };
  for (const { name, config } of MODEL_BENCH_CONFIGS) {
    console.error(`bench: model ${name}`);
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
    const summary = { params: entry.params };
    if (entry.forward.tokensPerSec !== undefined)
      summary.forwardTokensPerSec = round(entry.forward.tokensPerSec, 0);
    if (entry.train.ms !== undefined) {
      summary.trainStepMs = round(entry.train.ms);
      summary.trainTokensPerSec = round((B * T) / (entry.train.ms / 1000), 0);
    }
    if (entry.decode.tokensPerSec !== undefined)
      summary.decodeTokensPerSec = round(entry.decode.tokensPerSec, 0);
    summary.bounds = boundsOf(config, { ...entry, trainStepMs: summary.trainStepMs });
    result.configs[name] = { ...summary, ...entry };
  }
  return result;
}
