#!/usr/bin/env node
// `npm run bench:pytorch`: relign against PyTorch on the same models, in one run on this machine. For tiny-l4,
// tiny-l2 and the default base model's shape (@relign/base-model's config.json; random weights), it measures
// forward tokens/s, a training step (relign: `causalLmLoss` + `AdamW.guardedStep`, as its trainers) and
// sampling tokens/s (relign: `generate` of @relign/rollout, KV cache, host sampling, no stop tokens) with
// relign's default thread count and with 1 thread, then runs scripts/bench-pytorch.py (the same model, step and
// sampling in PyTorch) with 1 thread and with every core, and divides relign's figures by PyTorch's best of
// THIS run. Python: RELIGN_BENCH_PYTHON, else /usr/bin/python3 where it exists, else python3; without torch the
// JSON says `pytorch: { available: false, reason }` and has no ratios. One JSON object on stdout; build logs,
// progress and a Markdown table of the figures on stderr.
//
//   npm run -s bench:pytorch                          everything (a few minutes on 2 cores)
//   npm run -s bench:pytorch -- --only tiny-l4        one model (comma-separated names)
//   npm run -s bench:pytorch -- --steps 2             2 timed iterations of each figure (a quick check)
//   npm run -s bench:pytorch -- --no-build            use the packages' dist as built
//   node scripts/bench-pytorch.mjs --table out.json   print the table of a saved JSON (README) and exit
import { spawnSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchEnvironment } from './bench-env.mjs';
import { MODEL_BENCH_CONFIGS } from '../packages/lm/bench/model.mjs';
import { benchForward, benchSample, benchTrain, benchModules, round } from './bench-steps.mjs';

// Relaxed SIMD on Node 20 as the `relign` CLI has it (apps/reference/src/bin.ts), so the bench measures the
// kernels users run; set before any wasm module is compiled. RELIGN_WASM_RELAXED=0 measures the plain ones.
setFlagsFromString('--experimental-wasm-relaxed-simd');

const USAGE =
  'usage: npm run -s bench:pytorch -- [--only NAME[,NAME]] [--steps N] [--no-build] | --table FILE.json';
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** Batch, lengths, settings and repetitions; the Python side gets this very object. */
const PROTOCOL = {
  batch: 16,
  seqLen: 64,
  promptTokens: 8,
  newTokens: 64,
  forward: { warmup: 2, iters: 15 },
  train: {
    warmup: 2,
    steps: 15,
    lr: 1e-3,
    weightDecay: 0.01,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    maxGradNorm: 1,
  },
  // Warm-up: V8 optimizes tfjs's JS over the first few hundred forwards (see packages/lm/bench/model.mjs).
  sample: { warmup: 4, runs: 15, temperature: 1 },
};

// The lm bench's models: tiny-l4, tiny-l2 and the base model's shape (read from its config.json).
const CONFIGS = MODEL_BENCH_CONFIGS;

/** relign's three figures for one model at the current thread count; a failing one is `{ error }`. */
async function benchRelign(mods, { name, config }, protocol) {
  const { batch, seqLen, promptTokens, newTokens } = protocol;
  const tensorsBefore = mods.tf.memory().numTensors;
  const model = mods.lm.CausalLM.create(config, 0);
  const entry = { params: model.numParameters() };
  const attempt = async (key, fn) => {
    console.error(`bench:pytorch: relign, ${name} ${key}...`);
    try {
      entry[key] = await fn();
    } catch (err) {
      entry[key] = { error: String(err?.message ?? err).split('\n')[0] };
    }
  };
  try {
    await attempt('forward', () => benchForward(mods, model, { batch, seqLen, ...protocol.forward }));
    const { warmup, steps, maxGradNorm, beta1, beta2, eps, lr, weightDecay } = protocol.train;
    const adamw = { lr, weightDecay, beta1, beta2, eps };
    await attempt('train', () =>
      benchTrain(mods, model, { batch, seqLen, warmup, steps, adamw, maxGradNorm }),
    );
    await attempt('sample', () =>
      benchSample(mods, model, { batch, promptTokens, newTokens, ...protocol.sample }),
    );
  } finally {
    model.dispose();
  }
  entry.leakedTensors = mods.tf.memory().numTensors - tensorsBefore;
  return {
    params: entry.params,
    forwardTokensPerSec: entry.forward.tokensPerSec,
    trainStepMs: entry.train.stepMs,
    trainTokensPerSec: entry.train.tokensPerSec,
    sampleMs: entry.sample.ms,
    sampleTokensPerSec: entry.sample.tokensPerSec,
    detail: entry,
  };
}

/** The Python to run, and PyTorch's figures with `threads` threads, or `{ available: false, reason }`. */
function runPyTorch(protocol, threads) {
  const python =
    process.env.RELIGN_BENCH_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const script = resolve(root, 'scripts/bench-pytorch.py');
  const r = spawnSync(python, [script, JSON.stringify(protocol), String(threads)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
    timeout: 30 * 60_000, // a hung run ends the PyTorch side, not the bench
  });
  if (r.error) return { available: false, reason: `cannot run ${python}: ${r.error.message}` };
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    const out = JSON.parse(last);
    if (r.status === 0) return out;
    return { available: false, reason: `${python} ${script} exited with ${r.status}` };
  } catch {
    return {
      available: false,
      reason: `${python} ${script} exited with ${r.status} and printed no JSON (${last.slice(0, 200)})`,
    };
  }
}

/** PyTorch's best figure over its runs, with the thread count that gave it. */
function best(runs, name, key, lowerIsBetter) {
  let top;
  for (const run of runs) {
    const v = run.configs[name]?.[key];
    if (typeof v !== 'number') continue;
    if (!top || (lowerIsBetter ? v < top.value : v > top.value)) top = { value: v, threads: run.threads };
  }
  return top;
}

/** Ratios of this run: relign (each thread count) against PyTorch's best (1 thread or every core). */
function compare(relignRuns, torchRuns, names) {
  const out = {};
  for (const name of names) {
    const step = best(torchRuns, name, 'trainStepMs', true);
    const sample = best(torchRuns, name, 'sampleTokensPerSec', false);
    const forward = best(torchRuns, name, 'forwardTokensPerSec', false);
    const entry = {
      pytorchBest: {
        trainStepMs: step?.value,
        trainThreads: step?.threads,
        sampleTokensPerSec: sample?.value,
        sampleThreads: sample?.threads,
        forwardTokensPerSec: forward?.value,
        forwardThreads: forward?.threads,
      },
      relign: [],
    };
    for (const run of relignRuns) {
      const r = run.configs[name];
      const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' ? round(a / b, 2) : null);
      entry.relign.push({
        threads: run.threads,
        // Lower is better: relign's step takes this many times PyTorch's best (issue 19 target <= 1.5).
        trainStepRatio: ratio(r?.trainStepMs, step?.value),
        // Higher is better: relign samples this many times PyTorch's best tokens/s (target >= 1.5).
        sampleSpeedRatio: ratio(r?.sampleTokensPerSec, sample?.value),
        forwardSpeedRatio: ratio(r?.forwardTokensPerSec, forward?.value),
      });
    }
    out[name] = entry;
  }
  return out;
}

/** A Markdown table of a result (README): one row per model and run, then the ratios. */
function markdownTable(result) {
  const num = (x) => (typeof x === 'number' ? x.toLocaleString('en-US') : '–');
  const rows = [
    '| model | run | threads | forward tokens/s | training step ms | sampling tokens/s |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  const torchRuns = result.pytorch.available ? result.pytorch.runs : [];
  for (const name of Object.keys(result.relign.runs[0]?.configs ?? {})) {
    const line = (who, threads, c) =>
      `| ${name} | ${who} | ${threads ?? '–'} | ${num(c?.forwardTokensPerSec)} | ${num(c?.trainStepMs)} | ` +
      `${num(c?.sampleTokensPerSec)} |`;
    for (const run of result.relign.runs) rows.push(line('relign', run.threads, run.configs[name]));
    for (const run of torchRuns) rows.push(line('PyTorch', run.threads, run.configs[name]));
    for (const r of result.comparison?.[name]?.relign ?? []) {
      rows.push(
        `| ${name} | relign (${r.threads} ${r.threads === 1 ? 'thread' : 'threads'}) ÷ PyTorch's best | | ${r.forwardSpeedRatio ?? '–'}x | ` +
          `${r.trainStepRatio ?? '–'}x | ${r.sampleSpeedRatio ?? '–'}x |`,
      );
    }
  }
  return rows.join('\n');
}

async function main() {
  let args;
  try {
    args = parseArgs({
      options: {
        only: { type: 'string' },
        steps: { type: 'string' },
        'no-build': { type: 'boolean', default: false },
        table: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    console.error(`bench:pytorch: ${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) return console.error(USAGE);
  if (args.table) return console.log(markdownTable(JSON.parse(readFileSync(args.table, 'utf8'))));
  const protocol = structuredClone(PROTOCOL);
  if (args.steps !== undefined) {
    const n = Number(args.steps);
    if (!(Number.isInteger(n) && n >= 1)) {
      console.error(`bench:pytorch: --steps must be an integer >= 1 (got '${args.steps}').\n${USAGE}`);
      process.exit(2);
    }
    protocol.forward.iters = protocol.train.steps = protocol.sample.runs = n;
  }
  const names = args.only ? args.only.split(',') : CONFIGS.map((c) => c.name);
  const unknown = names.filter((n) => !CONFIGS.some((c) => c.name === n));
  if (unknown.length > 0) {
    console.error(
      `bench:pytorch: unknown model '${unknown.join(', ')}' in --only; known: ${CONFIGS.map((c) => c.name).join(', ')}`,
    );
    process.exit(2);
  }
  protocol.configs = CONFIGS.filter((c) => names.includes(c.name));

  const mods = await benchModules(root, { build: !args['no-build'] });
  const { tensor } = mods;
  const info = await tensor.initBackend();
  const environment = await benchEnvironment(info);
  // relign's default thread count, then 1 (where the backend is relign's wasm: the others own their pools).
  const wasm = info.name === 'wasm';
  const defaultThreads = wasm ? tensor.getWasmThreads() : environment.threads;
  const threadCounts = wasm ? [...new Set([defaultThreads, 1])] : [defaultThreads];
  const relignRuns = [];
  for (const threads of threadCounts) {
    let workers;
    if (wasm) {
      tensor.setWasmThreads(threads);
      workers = (await tensor.wasmThreadsReady()) - 1;
    }
    console.error(`bench:pytorch: relign on ${info.name}, ${threads ?? '-'} thread(s)`);
    const run = { threads, ...(wasm ? { workersUp: workers } : {}), configs: {} };
    for (const c of protocol.configs) run.configs[c.name] = await benchRelign(mods, c, protocol);
    relignRuns.push(run);
  }
  if (wasm) tensor.setWasmThreads(defaultThreads);

  const torchRuns = [];
  let pytorch;
  const cores = availableParallelism();
  for (const threads of [...new Set([1, cores])]) {
    const out = runPyTorch(protocol, threads);
    if (!out.available) {
      pytorch = out;
      break;
    }
    const { configs, threads: got, ...about } = out;
    pytorch = { ...about, runs: torchRuns };
    torchRuns.push({ threads: got, configs });
  }

  const result = {
    bench: 'bench:pytorch',
    protocol: { ...protocol, configs: Object.fromEntries(protocol.configs.map((c) => [c.name, c.config])) },
    environment,
    relign: { backend: info.name, defaultThreads, runs: relignRuns },
    pytorch,
    ...(pytorch.available ? { comparison: compare(relignRuns, torchRuns, names) } : {}),
  };
  console.log(JSON.stringify(result, null, 2));
  console.error(`\n${markdownTable(result)}`);
  if (pytorch.blas?.warning) console.error(`bench:pytorch: PyTorch uses the ${pytorch.blas.warning}`);
  if (!pytorch.available) console.error(`bench:pytorch: no PyTorch figures: ${pytorch.reason}`);
}

await main();
