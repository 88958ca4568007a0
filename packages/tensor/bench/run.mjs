// Benchmark of the tensor core's wasm training kernels (run after the build: `npm run bench -w @relign/tensor`).
//
// Selects the backend with the built package's `initBackend()` (honours RELIGN_BACKEND; by default the best
// available, wasm where no native or GPU backend is installed) and prints ONE JSON object on stdout:
// - matMul GFLOP/s for a plain 2-D product and its transposeA / transposeB / both variants, and for batched
//   attention-shaped products in every transpose combination, each with its time ratio to a plain 2-D product of
//   the same FLOPs (batch merged into rows); target on wasm: every ratio <= 1.3;
// - fwd+bwd time of an embedding gather (tf.gather of a [V,128] variable with 16*64 ids, then its gradient) at
//   V = 256 and V = 50257, and of the forward gather alone;
// - on wasm, the same figures with tfjs's stock kernels, measured first, for comparison.
// Progress goes to stderr. Keep the whole run under ~2 minutes.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../dist/index.js';
import { benchEnvironment } from '../../../scripts/bench-env.mjs';

const TARGET_RATIO = 1.3;
const log = (...args) => console.error('[bench]', ...args);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times `fn`: `samples` samples, each of enough calls to last >= minMs; returns every sample's ms per call.
 */
function sampleMs(fn, { samples = 5, minMs = 10, maxReps = 200 } = {}) {
  fn();
  const t0 = performance.now();
  fn();
  const once = Math.max(performance.now() - t0, 1e-3);
  const reps = Math.max(1, Math.min(maxReps, Math.ceil(minMs / once)));
  const out = [];
  for (let s = 0; s < samples; s++) {
    const t = performance.now();
    for (let r = 0; r < reps; r++) fn();
    out.push((performance.now() - t) / reps);
  }
  return out;
}

/** Seeded normal data as a tensor on the active backend. */
function randn(shape, seed) {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

const stored = (batch, rows, cols, t) => [...batch, ...(t ? [cols, rows] : [rows, cols])];

// [name, batch, m, k, n]; shapes typical of a small GPT (d=128, 4 heads of 32, T=64, 16 x 64 tokens).
const PRODUCTS = [
  ['linear [1024,128]x[128,512]', [], 1024, 128, 512],
  ['attention scores [64, 64x32]x[32x64]', [64], 64, 32, 64],
  ['attention values [64, 64x64]x[64x32]', [64], 64, 64, 32],
];
const VARIANTS = [
  ['plain', false, false],
  ['transposeA', true, false],
  ['transposeB', false, true],
  ['both', true, true],
];

/**
 * Each variant is timed back to back with the plain 2-D product of the same FLOPs, in several rounds. On a
 * shared machine other work only ever adds time, so the figures use the best sample of each (the median is
 * reported too); the ratio is best variant time / best plain time.
 */
function benchMatMul(label, { rounds = 6, stockSlow = false } = {}) {
  const results = {};
  for (const [name, batch, m, k, n] of PRODUCTS) {
    const batches = batch.reduce((x, y) => x * y, 1);
    const flops = 2 * m * k * n * batches;
    // The plain 2-D product of the same FLOPs: the batch merged into the rows.
    const pa = randn([m * batches, k], 1);
    const pb = randn([k, n], 2);
    const plain = () => tf.matMul(pa, pb).dispose();
    const operands = VARIANTS.map(([, ta, tb], i) => [
      randn(stored(batch, m, k, ta), 3 + i),
      randn(stored(batch, k, n, tb), 13 + i),
    ]);
    const times = VARIANTS.map(() => []);
    const plainTimes = [];
    const slow = (ta, tb) => stockSlow && (ta || tb || batch.length > 0);
    for (let r = 0; r < rounds; r++) {
      VARIANTS.forEach(([, ta, tb], i) => {
        if (slow(ta, tb) && r >= 1) return; // the stock naive loop: one sample is plenty
        const [a, b] = operands[i];
        const opts = slow(ta, tb) ? { samples: 1, minMs: 0, maxReps: 1 } : { samples: 3 };
        plainTimes.push(...sampleMs(plain, { samples: 3 }));
        times[i].push(...sampleMs(() => tf.matMul(a, b, ta, tb).dispose(), opts));
      });
    }
    const plainMs = Math.min(...plainTimes);
    const entry = {
      plain_2d_equivalent: {
        shape: `[${m * batches},${k}]x[${k},${n}]`,
        ms: plainMs,
        ms_median: median(plainTimes),
        gflops: flops / plainMs / 1e6,
      },
    };
    VARIANTS.forEach(([variant], i) => {
      const ms = Math.min(...times[i]);
      entry[variant] = {
        ms,
        ms_median: median(times[i]),
        gflops: flops / ms / 1e6,
        ratio_to_plain_2d: ms / plainMs,
      };
      log(
        `${label} ${name} ${variant}: ${(flops / ms / 1e6).toFixed(1)} GFLOP/s, ratio ${(ms / plainMs).toFixed(2)}`,
      );
    });
    tf.dispose([pa, pb, ...operands.flat()]);
    results[name] = entry;
  }
  return results;
}

function benchGather(label) {
  const results = {};
  const tokens = 16 * 64;
  let s = 12345;
  for (const vocab of [256, 50257]) {
    const ids = tf.tensor1d(
      Int32Array.from({ length: tokens }, () => {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        return s % vocab;
      }),
      'int32',
    );
    const table = tf.variable(randn([vocab, 128], 5));
    const w = randn([tokens, 128], 6);
    // wasm and cpu run kernels synchronously; elsewhere wait for the gradient through a scalar reduction of it
    // (the stock wasm Slice would copy the whole 26 MB gradient to read one element).
    const synchronous = ['wasm', 'cpu'].includes(tf.getBackend());
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(table, ids), w)), [table]);
      if (!synchronous) tf.tidy(() => tf.sum(grads[table.name]).dataSync());
      tf.dispose([value, grads[table.name]]);
    };
    const forward = sampleMs(() => tf.gather(table, ids).dispose(), { samples: 9, minMs: 10 });
    const entry = { forward_ms: Math.min(...forward) };
    if (tf.getBackend() === 'cpu' && vocab > 1000) {
      // tfjs's cpu UnsortedSegmentSum runs 5 kernels per segment: minutes at V = 50257.
      entry.skipped = 'cpu UnsortedSegmentSum costs O(V) kernel calls';
      results[`V=${vocab}`] = entry;
      continue;
    }
    try {
      const times = sampleMs(step, { samples: 9, minMs: 20, maxReps: 20 });
      Object.assign(entry, { ms: Math.min(...times), ms_median: median(times) });
      log(
        `${label} gather fwd+bwd V=${vocab}: ${entry.ms.toFixed(2)} ms (forward ${entry.forward_ms.toFixed(2)} ms)`,
      );
    } catch (err) {
      entry.error = String(err?.message ?? err).split('\n')[0];
      log(`${label} gather fwd+bwd V=${vocab}: ${entry.error} (forward ${entry.forward_ms.toFixed(2)} ms)`);
    }
    results[`V=${vocab}`] = entry;
    tf.dispose([ids, table, w]);
  }
  return results;
}

const started = performance.now();
const report = {};

// Stock kernels first: initBackend registers relign's kernels as soon as wasm is selected.
let stock;
try {
  if (await tf.setBackend('wasm')) {
    await tf.ready();
    if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
      log('measuring the stock wasm kernels');
      stock = { matmul: benchMatMul('stock', { rounds: 3, stockSlow: true }), gather: benchGather('stock') };
    }
  }
} catch (err) {
  log('stock wasm figures skipped:', err?.message ?? err);
}

const info = await initBackend();
report.backend = { name: info.name, package: info.package, gpu: info.gpu, reason: info.reason };
report.environment = await benchEnvironment(info);
log(`active backend: ${info.name} (${info.package}, ${info.reason})`);
report.matmul = benchMatMul(info.name, info.name === 'cpu' ? { rounds: 1 } : {});
report.gather_fwd_bwd_ms = benchGather(info.name);

const ratios = Object.values(report.matmul).flatMap((e) => VARIANTS.map(([v]) => e[v].ratio_to_plain_2d));
report.summary = {
  unit: {
    matmul:
      'GFLOP/s and ms of the best sample (ms_median: median); ratio: best time / best time of the plain 2-D product of the same FLOPs',
    gather: 'ms of the best sample (ms_median: median); forward_ms: tf.gather alone',
  },
  target_ratio: TARGET_RATIO,
  worst_ratio: Math.max(...ratios),
  all_within_target: ratios.every((r) => r <= TARGET_RATIO),
};
if (stock) {
  report.stock_wasm = stock;
  const speedups = {};
  for (const [name, entry] of Object.entries(report.matmul)) {
    speedups[name] = Object.fromEntries(VARIANTS.map(([v]) => [v, stock.matmul[name][v].ms / entry[v].ms]));
  }
  report.summary.speedup_vs_stock = speedups;
}
report.seconds = (performance.now() - started) / 1000;
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
