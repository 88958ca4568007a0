// Benchmark of one guarded AdamW step (`guardedStep`, maxGradNorm 1) on the demo's base model parameter set
// (GPT-2 shape: V 1024, d 128, 4 layers, 128 positions: 52 tensors, 0.94M parameters) on wasm, with the fused
// `RelignAdamW` kernel and without it (today's per-parameter tfjs ops). Run after the build:
// `node bench/adamw.mjs` in packages/tensor. Variants alternate within each round (ROUNDS, default 9; STEPS per
// sample, default 5), so load from other processes hits both alike; times are CPU ms per step (process user +
// system, less distorted than wall time on a busy machine), printed as one JSON object on stdout.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { AdamW, initBackend, registerWasmKernels } from '../dist/index.js';

const ROUNDS = Number(process.env.ROUNDS ?? 9);
const STEPS = Number(process.env.STEPS ?? 5);
const KERNEL = 'RelignAdamW';

await initBackend('wasm');
const [V, d, T, L] = [1024, 128, 128, 4];
const shapes = { wte: [V, d], wpe: [T, d], 'ln_f.g': [d], 'ln_f.b': [d] };
const layer = [
  ['ln_1.g', [d]],
  ['ln_1.b', [d]],
  ['attn.c_attn.w', [d, 3 * d]],
  ['attn.c_attn.b', [3 * d]],
  ['attn.c_proj.w', [d, d]],
  ['attn.c_proj.b', [d]],
  ['ln_2.g', [d]],
  ['ln_2.b', [d]],
  ['mlp.c_fc.w', [d, 4 * d]],
  ['mlp.c_fc.b', [4 * d]],
  ['mlp.c_proj.w', [4 * d, d]],
  ['mlp.c_proj.b', [d]],
];
for (let l = 0; l < L; l++) for (const [n, s] of layer) shapes[`h.${l}.${n}`] = s;
let seed = 1;
const params = {};
const grads = {};
for (const [name, shape] of Object.entries(shapes)) {
  params[name] = tf.variable(tf.randomNormal(shape, 0, 0.02, 'float32', seed++), true, `bench/${name}`);
  grads[name] = tf.randomNormal(shape, 0, 0.01, 'float32', seed++);
}
const opt = new AdamW({ lr: 1e-4 });

async function withKernel(fused, fn) {
  if (!fused) tf.unregisterKernel(KERNEL, 'wasm');
  try {
    return await fn();
  } finally {
    if (!fused) registerWasmKernels();
  }
}

const step = () => opt.guardedStep(grads, params, { maxGradNorm: 1 });
const cpuMsPerStep = (fused) =>
  withKernel(fused, async () => {
    await step(); // warm
    const c0 = process.cpuUsage();
    for (let i = 0; i < STEPS; i++) await step();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000 / STEPS;
  });
const kernels = (fused) =>
  withKernel(fused, async () => (await tf.profile(async () => void (await step()))).kernels.length);

const result = { tensors: Object.keys(params).length, parameters: 0, kernelsPerStep: {}, cpuMsPerStep: {} };
result.parameters = Object.values(params).reduce((a, p) => a + p.size, 0);
result.kernelsPerStep = { unfused: await kernels(false), fused: await kernels(true) };
const samples = { unfused: [], fused: [] };
for (let r = 0; r < ROUNDS; r++) {
  samples.unfused.push(await cpuMsPerStep(false));
  samples.fused.push(await cpuMsPerStep(true));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const [k, xs] of Object.entries(samples)) {
  result.cpuMsPerStep[k] = { median: +median(xs).toFixed(2), best: +Math.min(...xs).toFixed(2) };
}
console.log(JSON.stringify(result));
