#!/usr/bin/env node
// `npm run bench:gpu`: training-step time (forward + backward + guarded AdamW, relign's own loss and optimizer)
// and sampling speed (KV-cached `generate` of @relign/rollout, host sampling with exact log-probs) on the active
// backend (initBackend: RELIGN_BACKEND if set, else the best installed), for the `tiny-l4` shape and for GPT-2
// small's shape (124M parameters, random weights). One JSON object on stdout; build logs and progress on stderr.
// It prints what it measured (absolute times, backend, WebGPU adapter): the same command measures a real GPU
// when one is present. README "Backends" shows how to run it on a GPU.
//
//   npm run bench:gpu                        both shapes (124M skipped on a CPU backend or a software adapter)
//   npm run bench:gpu -- --skip-124m         tiny-l4 only
//   npm run bench:gpu -- --force-124m        124M even on wasm/cpu/SwiftShader (wasm runs out of memory)
//   npm run bench:gpu -- --steps 2           time 2 training steps and 2 sampling runs per shape (slow backends)
//   npm run bench:gpu -- --no-build          use the packages' dist as built
import { availableParallelism, cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchEnvironment } from './bench-env.mjs';
import { benchSample, benchTrain, benchModules, round } from './bench-steps.mjs';

const USAGE = 'usage: npm run bench:gpu -- [--skip-124m | --force-124m] [--steps N] [--no-build]';

/** The measured shapes. Train: `batch` rows of `seqLen` tokens; sample: `batch` prompts of 8 tokens + 64 new. */
const GPU_BENCH_SHAPES = [
  {
    name: 'tiny-l4',
    config: { vocab_size: 256, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 },
    train: { batch: 16, seqLen: 64, warmup: 2, steps: 5 },
    sample: { batch: 16, promptTokens: 8, newTokens: 64, warmup: 1, runs: 3 },
  },
  {
    name: 'gpt2-124m',
    big: true,
    config: { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 },
    train: { batch: 4, seqLen: 128, warmup: 1, steps: 3 },
    sample: { batch: 4, promptTokens: 8, newTokens: 64, warmup: 1, runs: 2 },
  },
];

/** Why the 124M shape is skipped on this backend, or undefined when it runs. */
function bigShapeSkipReason(info, adapter, { skip, force }) {
  if (skip) return 'skipped by --skip-124m';
  if (force) return undefined;
  if (!info.gpu) {
    return `backend '${info.name}' computes on the CPU, where the 124M shape is impractically slow or runs out of memory; --force-124m runs it anyway`;
  }
  if (adapter?.software) {
    return `the WebGPU adapter is a software one (${[adapter.vendor, adapter.architecture, adapter.description].filter(Boolean).join(' / ')}): a CPU emulating a GPU; --force-124m runs it anyway`;
  }
  return undefined;
}

/** Measures one shape; a measurement that throws (a missing kernel, out of memory) is reported as `{ error }`. */
async function benchShape(mods, shape) {
  const { tf, lm } = mods;
  const tensorsBefore = tf.memory().numTensors;
  const c0 = performance.now();
  const model = lm.CausalLM.create(shape.config, 0);
  const entry = {
    config: shape.config,
    params: model.numParameters(),
    createSeconds: round((performance.now() - c0) / 1000, 2),
  };
  const attempt = async (key, fn) => {
    console.error(`bench:gpu: ${shape.name} ${key}...`);
    try {
      entry[key] = await fn();
    } catch (err) {
      entry[key] = { error: String(err?.message ?? err).split('\n')[0] };
    }
  };
  try {
    await attempt('train', () => benchTrain(mods, model, shape.train));
    await attempt('sample', () => benchSample(mods, model, shape.sample));
  } finally {
    model.dispose();
  }
  entry.leakedTensors = tf.memory().numTensors - tensorsBefore;
  return entry;
}

async function main() {
  let args;
  try {
    args = parseArgs({
      options: {
        'skip-124m': { type: 'boolean', default: false },
        'force-124m': { type: 'boolean', default: false },
        'no-build': { type: 'boolean', default: false },
        steps: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    console.error(`bench:gpu: ${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    console.error(USAGE);
    return;
  }
  if (args['skip-124m'] && args['force-124m']) {
    console.error(`bench:gpu: --skip-124m and --force-124m contradict each other.\n${USAGE}`);
    process.exit(2);
  }
  const steps = args.steps === undefined ? undefined : Number(args.steps);
  if (steps !== undefined && !(Number.isInteger(steps) && steps >= 1)) {
    console.error(`bench:gpu: --steps must be an integer >= 1 (got '${args.steps}').\n${USAGE}`);
    process.exit(2);
  }
  const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
  const mods = await benchModules(root, { build: !args['no-build'] });
  const { tensor } = mods;
  const info = await tensor.initBackend();
  // initBackend reports the WebGPU adapter (vendor, architecture, description, software or not).
  const adapter = info.adapter ?? null;
  const { threads, threadsNote } = await benchEnvironment(info);
  console.error(
    `bench:gpu: backend ${info.name} (${info.package}), threads ${threads ?? '-'}${adapter ? `, adapter ${JSON.stringify(adapter)}` : ''}`,
  );
  const result = {
    bench: 'bench:gpu',
    backend: { name: info.name, package: info.package, gpu: info.gpu, reason: info.reason },
    adapter,
    threads,
    ...(threadsNote ? { threadsNote } : {}),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    // CPU time next to wall time, and the load: on a shared machine a CPU backend's wall time includes waiting.
    host: {
      cpu: cpus()[0]?.model ?? '',
      cores: availableParallelism(),
      loadavg1mStart: round(loadavg()[0], 2),
    },
    shapes: {},
  };
  const bigSkip = bigShapeSkipReason(info, adapter, {
    skip: args['skip-124m'],
    force: args['force-124m'],
  });
  for (const shape of GPU_BENCH_SHAPES) {
    if (shape.big && bigSkip) {
      console.error(`bench:gpu: ${shape.name} skipped: ${bigSkip}`);
      result.shapes[shape.name] = { config: shape.config, skipped: bigSkip };
      continue;
    }
    const timed =
      steps === undefined
        ? shape
        : { ...shape, train: { ...shape.train, steps }, sample: { ...shape.sample, runs: steps } };
    result.shapes[shape.name] = await benchShape(mods, timed);
  }
  result.host.loadavg1mEnd = round(loadavg()[0], 2);
  console.log(JSON.stringify(result, null, 2));
}

await main();
