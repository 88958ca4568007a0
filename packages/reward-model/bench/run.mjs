// `npm run bench -w @relign/reward-model`: one JSON object on stdout with reward-model scoring throughput and
// the time of one training step (Bradley–Terry loss, forward + backward + AdamW) on the active backend
// (RELIGN_BACKEND to choose). Progress goes to stderr.
import { initBackend } from '@relign/tensor';
import * as rmlib from '../dist/index.js';
import { benchEnvironment } from '../../../scripts/bench-env.mjs';

const CONFIG = { vocab_size: 256, n_positions: 128, n_embd: 128, n_layer: 2, n_head: 4 };
const PAIRS = 16; // pairs per training step (32 sequences)
const LEN = 64; // tokens per sequence

const backend = await initBackend();
const environment = await benchEnvironment(backend);
console.error(`bench: backend ${backend.name} (${backend.package}), threads ${environment.threads ?? '-'}`);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

let seed = 12345;
function randomIds(n) {
  return Int32Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % CONFIG.vocab_size;
  });
}
const example = () => ({ ids: randomIds(LEN), promptLength: LEN / 2, length: LEN });
const pairs = Array.from({ length: PAIRS }, () => ({ chosen: example(), rejected: example() }));

const rm = rmlib.RewardModel.create(CONFIG, { seed: 0 });

// Scoring: 2 × PAIRS sequences per call.
const sequences = pairs.flatMap((p) => [p.chosen.ids, p.rejected.ids]);
await rm.scoreSequences(sequences);
const scoreMs = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  await rm.scoreSequences(sequences);
  scoreMs.push(performance.now() - t0);
}

// Training: time a run of 2 warm-up + 3 timed steps from the per-step callback.
const stepMs = [];
let last = performance.now();
await rmlib.runRewardModelTraining(rm, pairs, [], {
  batchSize: PAIRS,
  lr: 1e-4,
  maxSteps: 5,
  onMetrics: (m) => {
    const now = performance.now();
    if (m.step > 2) stepMs.push(now - last);
    last = now;
  },
});
rm.dispose();

const scoring = { ms: median(scoreMs), sequencesPerSec: sequences.length / (median(scoreMs) / 1000) };
const trainStep = { ms: median(stepMs), pairsPerSec: PAIRS / (median(stepMs) / 1000) };
console.log(
  JSON.stringify(
    {
      package: '@relign/reward-model',
      backend: backend.name,
      environment,
      config: CONFIG,
      seqLen: LEN,
      pairs: PAIRS,
      scoring,
      trainStep,
    },
    null,
    2,
  ),
);
