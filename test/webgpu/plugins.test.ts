/**
 * Every optimizer plugin on webgpu: the conformance checks that take updates (a rollout, one update with
 * finite metrics; tensor counts flat over several updates, `evaluate` and `state()`), with each plugin's
 * own conformance config. The other checks (config validation, determinism, state round trip) do not
 * depend on the backend and run on cpu and wasm in the plugins' tests.
 */
import { describe, it } from 'vitest';
import { conformanceChecks, type ConformanceCheckName } from '@relign/core/testing';
import { ppoMaxPlugin } from '@relign/ppo-max';
import { onlineDpoPlugin } from '@relign/dpo';
import { p3oV1Plugin } from '@relign/p3o-v1';
import { p3oV2Plugin } from '@relign/p3o-v2';
import { grpoPlugin } from '@relign/grpo';
import { rlooPlugin } from '@relign/rloo';
import { itHasAdapter, startWebGPU } from './adapter.js';

const webgpu = await startWebGPU('plugins.test.ts');

const ON_WEBGPU: readonly ConformanceCheckName[] = ['requirements', 'no-leaks'];

/** Two counted updates (after a warm-up) instead of four: SwiftShader takes seconds per update. */
const FEWER = { leakUpdates: 2 } as const;

const PLUGINS = [
  [
    'ppo-max',
    () =>
      conformanceChecks(ppoMaxPlugin, {
        config: { criticInit: 'policy', lr: 1e-3, criticLr: 1e-3 },
        ...FEWER,
      }),
  ],
  [
    'dpo (online)',
    () => conformanceChecks(onlineDpoPlugin, { config: { pairsPerMinibatch: 2, lr: 1e-3 }, ...FEWER }),
  ],
  ['p3o-v1', () => conformanceChecks(p3oV1Plugin, { config: { pairsPerMinibatch: 2, lr: 1e-3 }, ...FEWER })],
  ['p3o-v2', () => conformanceChecks(p3oV2Plugin, { config: { pairsPerMinibatch: 2, lr: 1e-3 }, ...FEWER })],
  // GRPO with the paper's β = 0.04 and per-completion loss: the reference log-probs and k3 term run too.
  [
    'grpo',
    () =>
      conformanceChecks(grpoPlugin, {
        config: { numGenerations: 4, groupsPerMinibatch: 2, beta: 0.04, lossType: 'grpo', lr: 1e-3 },
        klCoef: 0.04,
        ...FEWER,
      }),
  ],
  [
    'rloo',
    () => conformanceChecks(rlooPlugin, { config: { rlooK: 4, promptsPerMinibatch: 2, lr: 1e-3 }, ...FEWER }),
  ],
] as const;

itHasAdapter(webgpu);

describe.skipIf(!webgpu.info).each(PLUGINS)('%s on webgpu', (_name, checks) => {
  for (const check of checks().filter((c) => ON_WEBGPU.includes(c.name))) {
    it(check.title, () => check.run());
  }
});
