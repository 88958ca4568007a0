/** The `relign` executable: `bin/relign.mjs` imports the built copy of this file, which runs {@link main}. */
import { main } from './cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`relign: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
