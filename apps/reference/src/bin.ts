/** The `relign` executable: `bin/relign.mjs` imports the built copy of this file, which runs {@link main}. */
import { setFlagsFromString } from 'node:v8';

// Wasm relaxed SIMD (a fused multiply-add in the GEMM micro-kernels, 1.2-1.6x faster products on x86) is on by
// default from Node 22; Node 20's V8 has the same, finished feature behind this flag. It must be set before
// the first wasm module is compiled, hence here and before `main` is loaded. RELIGN_WASM_RELAXED=0 still
// selects the plain kernels (@relign/tensor's README, "Relaxed SIMD").
setFlagsFromString('--experimental-wasm-relaxed-simd');
import('./cli/main.js')
  .then(({ main }) => main(process.argv.slice(2)))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`relign: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
