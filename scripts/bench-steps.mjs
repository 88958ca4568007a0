// The measurements that `npm run bench:gpu` and `npm run bench:pytorch` share: a model's forward, a training step
// as relign's trainers take it, and sampling as relign's `generate` does it. Each takes the modules it needs
// ({ tf, lm, tensor, rollout }, imported by the caller after the build) and returns absolute figures of this run.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const round = (x, digits = 1) => Number(x.toFixed(digits));

/** Deterministic token ids in [0, vocab). */
export function randomIds(n, vocab, seed) {
  let s = seed >>> 0;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % vocab;
  }
  return out;
}

/** Forward passes over `batch` rows of `seqLen` tokens (logits read back), `iters` timed after `warmup`. */
export async function benchForward({ tf }, model, { batch, seqLen, warmup, iters }) {
  const ids = tf.tensor2d(randomIds(batch * seqLen, model.config.vocab_size, 1), [batch, seqLen], 'int32');
  const once = async () => {
    const { logits, hidden } = model.forward(ids);
    hidden.dispose();
    await logits.data();
    logits.dispose();
  };
  try {
    for (let i = 0; i < warmup; i++) await once();
    const ms = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await once();
      ms.push(performance.now() - t0);
    }
    return {
      ms: round(median(ms)),
      runsMs: ms.map((x) => round(x)),
      tokensPerSec: round((batch * seqLen) / (median(ms) / 1000), 0),
    };
  } finally {
    ids.dispose();
  }
}

/**
 * Training steps as relign's loops take them: the batch uploaded, `causalLmLoss` under `tf.variableGrads`, and
 * `AdamW.guardedStep` (global-norm clipping, non-finite and update-magnitude guard on the device, one small
 * asynchronous read). Times `steps` steps after `warmup` (kernel compilation, weight packing); the last one
 * also waits for its update to land on the device. `adamw`: the optimizer's options.
 */
export async function benchTrain(
  { tf, lm, tensor },
  model,
  { batch, seqLen, warmup, steps, adamw = { lr: 1e-4, weightDecay: 0.1 }, maxGradNorm = 1 },
) {
  const V = model.config.vocab_size;
  const trainable = model.trainableVariables();
  const varList = [...trainable.values()];
  const optimizer = new tensor.AdamW(adamw);
  let skipped = 0;
  let seed = 1;
  const step = async () => {
    const b = {
      inputIds: tf.tensor2d(randomIds(batch * seqLen, V, seed++), [batch, seqLen], 'int32'),
      attentionMask: tf.ones([batch, seqLen], 'int32'),
      targetMask: tf.ones([batch, seqLen - 1], 'float32'),
    };
    try {
      const { value, grads } = tf.variableGrads(() => lm.causalLmLoss(model, b), varList);
      try {
        const byName = {};
        for (const [name, v] of trainable) if (grads[v.name] !== undefined) byName[name] = grads[v.name];
        const r = await optimizer.guardedStep(byName, trainable, { maxGradNorm });
        if (r.skipped) skipped++;
      } finally {
        value.dispose();
        for (const g of Object.values(grads)) g.dispose();
      }
    } finally {
      lm.disposeBatchTensors(b);
    }
  };
  const smallest = varList.reduce((a, v) => (v.size < a.size ? v : a));
  try {
    for (let i = 0; i < warmup; i++) await step();
    const ms = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      const s0 = performance.now();
      await step();
      if (i === steps - 1) await smallest.data(); // the last update, too
      ms.push(performance.now() - s0);
    }
    const meanMs = (performance.now() - t0) / steps;
    const cpu = process.cpuUsage(cpu0);
    return {
      batch,
      seqLen,
      warmupSteps: warmup,
      steps,
      stepMs: round(median(ms)),
      meanStepMs: round(meanMs),
      stepsMs: ms.map((x) => round(x)),
      cpuMsPerStep: round((cpu.user + cpu.system) / 1000 / steps),
      tokensPerSec: round((batch * seqLen) / (median(ms) / 1000), 0),
      skippedSteps: skipped,
    };
  } finally {
    optimizer.dispose();
  }
}

/**
 * `generate` (prefill + KV-cached decode, host sampling with exact log-probs, no stop tokens so every row
 * decodes `newTokens`).
 */
export async function benchSample(
  { rollout },
  model,
  { batch, promptTokens, newTokens, warmup, runs, temperature = 1 },
) {
  const V = model.config.vocab_size;
  const prompts = Array.from({ length: batch }, (_, b) => Array.from(randomIds(promptTokens, V, 100 + b)));
  const options = { maxNewTokens: newTokens, temperature, stopTokenIds: [], seed: 1 };
  for (let i = 0; i < warmup; i++) await rollout.generate(model, prompts, options);
  const ms = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await rollout.generate(model, prompts, options);
    ms.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    batch,
    promptTokens,
    newTokens,
    runs,
    ms: round(median(ms)),
    runsMs: ms.map((x) => round(x)),
    cpuMsPerRun: round((cpu.user + cpu.system) / 1000 / runs),
    tokensPerSec: round((batch * newTokens) / (median(ms) / 1000), 0),
  };
}

/**
 * Builds @relign/rollout and what it depends on unless `build` is false (turbo; logs to stderr; exits on a failed
 * build), then imports the modules the measurements take: `{ tensor, tf, lm, rollout }`, from the packages' dist.
 */
export async function benchModules(root, { build = true } = {}) {
  if (build) buildRollout(root);
  return {
    tensor: await import('@relign/tensor'),
    tf: await import('@tensorflow/tfjs-core'),
    lm: await import('@relign/lm'),
    rollout: await import('@relign/rollout'),
  };
}

function buildRollout(root) {
  const r = spawnSync(
    process.execPath,
    [
      resolve(root, 'node_modules/turbo/bin/turbo'),
      'run',
      'build',
      '--filter=@relign/rollout...',
      '--output-logs=errors-only',
    ],
    { cwd: root, stdio: ['ignore', 2, 2] },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
}
