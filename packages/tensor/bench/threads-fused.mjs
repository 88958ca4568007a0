// Micro-benchmark of the wasm GEMM on 1 vs N threads and of the fused GELU / LayerNorm kernels against the
// unfused op chains (run after the build: `node bench/threads-fused.mjs` in packages/tensor; THREADS=n sets N,
// default every core). Variants are interleaved within each round so that load from other processes hits them
// alike; it prints absolute times (median and best of the rounds, ms per call) as one JSON object on stdout.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import {
  fusedGelu,
  fusedLayerNorm,
  getWasmThreads,
  initBackend,
  setWasmThreads,
  wasmThreadsReady,
} from '../dist/index.js';

const ROUNDS = Number(process.env.ROUNDS ?? 9);
const log = (...args) => console.error('[bench]', ...args);

function msPerCall(fn, minMs = 20) {
  let reps = 0;
  const t0 = performance.now();
  do {
    tf.tidy(fn);
    reps++;
  } while (performance.now() - t0 < minMs);
  return (performance.now() - t0) / reps;
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { medianMs: +s[s.length >> 1].toFixed(4), bestMs: +s[0].toFixed(4) };
}

/** Runs each variant once per round, `ROUNDS` rounds; variants: { name: [setup, fn] }. */
async function interleaved(variants) {
  const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS + 1; r++) {
    for (const [name, [setup, fn]] of Object.entries(variants)) {
      await setup();
      const ms = msPerCall(fn);
      if (r > 0) times[name].push(ms); // round 0 warms up
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, summary(v)]));
}

await initBackend('wasm');
const threads = Number(process.env.THREADS ?? getWasmThreads());
const one = async () => setWasmThreads(1);
const many = async () => {
  setWasmThreads(threads);
  await wasmThreadsReady();
};
const result = { backend: tf.getBackend(), threads, rounds: ROUNDS, matMul: {}, fused: {} };

// tiny-l4 training shapes (B*T = 1024 rows, d = 128) and a larger model's (d = 768).
for (const [m, k, n, tA, tB] of [
  [1024, 128, 384, false, false],
  [1024, 512, 128, false, false],
  [128, 1024, 512, true, false],
  [1024, 768, 768, false, false],
  [1024, 768, 3072, false, true],
]) {
  const a = tf.randomNormal(tA ? [k, m] : [m, k]);
  const b = tf.randomNormal(tB ? [n, k] : [k, n]);
  const fn = () => tf.matMul(a, b, tA, tB);
  const key = `${m}x${k}x${n}${tA ? ' tA' : ''}${tB ? ' tB' : ''}`;
  log('matMul', key);
  const t = await interleaved({ '1 thread': [one, fn], [`${threads} threads`]: [many, fn] });
  for (const v of Object.values(t)) v.bestGflops = +((2 * m * n * k) / v.bestMs / 1e6).toFixed(1);
  result.matMul[key] = t;
  tf.dispose([a, b]);
}
setWasmThreads(1);

const C = 1.5957691216057308;
const geluRef = (x) => tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), C * 0.044715), C))));
function layerNormRef(x, g, b) {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, 1e-5))), g), b);
}
const none = async () => {};
for (const [rows, d] of [
  [16, 128],
  [16, 512],
  [1024, 128],
  [1024, 512],
]) {
  const x = tf.randomNormal([rows, d]);
  const g = tf.randomNormal([d]);
  const b = tf.randomNormal([d]);
  log('fused', rows, d);
  result.fused[`gelu ${rows}x${d}`] = await interleaved({
    unfused: [none, () => geluRef(x)],
    fused: [none, () => fusedGelu(x)],
  });
  result.fused[`layerNorm ${rows}x${d}`] = await interleaved({
    unfused: [none, () => layerNormRef(x, g, b)],
    fused: [none, () => fusedLayerNorm(x, g, b)],
  });
  tf.dispose([x, g, b]);
}
console.log(JSON.stringify(result, null, 1));
