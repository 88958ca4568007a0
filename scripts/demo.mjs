#!/usr/bin/env node
/**
 * `npm run demo` — the README's main job: the whole default pipeline of the reference app on the `demo`
 * preset ("make the model write positive reviews"):
 *
 *   SFT of relign's base model on review sentences → preference pairs sampled from the SFT model and labelled
 *   by VADER through Bradley–Terry sampling → reward model (checked against the human labels) → RL against it
 *   with PPO-max, online DPO, P3O-V1, P3O-V2, GRPO and RLOO → evaluation (gold, judge, proxy, KL to SFT, win
 *   rates) → KL–reward frontier → runs/demo/report/report.html, and the frontier charts as a PNG for the README
 *   (docs/frontier.png, when Chromium is installed; a plain `npm run demo` only).
 *
 * It is `relign run --preset demo` (apps/reference); extra arguments are passed on, e.g.
 * `npm run demo -- --resume`, `npm run demo -- --backend cpu`, `npm run demo -- --train.iterations 20`.
 * Each stage's time is printed as it ends, and the table of all stage times at the end. The six train stages
 * run concurrently in child processes (`train.parallel: auto`: as many at once as there are cores, each with
 * RELIGN_THREADS = cores / at once; apps/reference/README.md, "Concurrent train stages"), with the same
 * results as one after another; `npm run demo -- --train.parallel 1` runs them in turn.
 */
import { setFlagsFromString } from 'node:v8';

// Relaxed SIMD for the wasm GEMM on Node 20, as the `relign` executable does (apps/reference/src/bin.ts): set
// before the first wasm module is compiled, so before the app is loaded.
setFlagsFromString('--experimental-wasm-relaxed-simd');
const { main, renderFrontierPng } = await import('@relign/reference');

const args = process.argv.slice(2);
const hasPreset = args.some((a) => a === '--preset' || a.startsWith('--preset='));
const t0 = performance.now();
const code = await main(['run', ...(hasPreset ? [] : ['--preset', 'demo']), ...args]);
const seconds = (performance.now() - t0) / 1000;
// The README's picture comes from the default demo only (other arguments make another run).
if (code === 0 && args.length === 0) {
  try {
    console.log(
      `demo: frontier charts -> ${await renderFrontierPng('runs/demo/report/report.html', 'docs/frontier.png')}`,
    );
  } catch (err) {
    console.log(`demo: docs/frontier.png not updated (${err.message})`);
  }
}
console.log(
  `demo: ${code === 0 ? 'finished' : `stopped (exit ${code})`} in ${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`,
);
process.exitCode = code;
