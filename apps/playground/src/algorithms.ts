/**
 * The optimizers the page offers, with settings sized for a ~0.94M-parameter model trained in a browser tab:
 * few prompts per iteration, short answers, learning rates far above the papers' (which are for 6B models).
 */
import type { AnyAlgorithmPlugin } from '@relign/core';
import dpoPlugin from '@relign/dpo';
import grpoPlugin from '@relign/grpo';
import p3oV1Plugin from '@relign/p3o-v1';
import p3oV2Plugin from '@relign/p3o-v2';
import { ppoMaxPlugin } from '@relign/ppo-max';
import rlooPlugin from '@relign/rloo';

export interface Algorithm {
  name: string;
  label: string;
  plugin: AnyAlgorithmPlugin;
  pluginConfig: Record<string, unknown>;
  /** Whether it samples two answers per prompt, so a person's click between them is all it needs. */
  pairwise: boolean;
}

const pairwise = { lr: 1e-3, epochs: 2, pairsPerMinibatch: 4 };

export const ALGORITHMS: readonly Algorithm[] = [
  { name: 'p3o-v2', label: 'P3O-V2', plugin: p3oV2Plugin, pluginConfig: pairwise, pairwise: true },
  { name: 'p3o-v1', label: 'P3O-V1', plugin: p3oV1Plugin, pluginConfig: pairwise, pairwise: true },
  { name: 'dpo', label: 'online DPO', plugin: dpoPlugin, pluginConfig: pairwise, pairwise: true },
  // Two samples per prompt keeps GRPO/RLOO usable with clicks as well (a group of two is a pair).
  {
    name: 'grpo',
    label: 'GRPO',
    plugin: grpoPlugin,
    pluginConfig: { lr: 1e-3, numGenerations: 2, numIterations: 2 },
    pairwise: true,
  },
  {
    name: 'rloo',
    label: 'RLOO',
    plugin: rlooPlugin,
    pluginConfig: { lr: 1e-3, rlooK: 2, epochs: 2 },
    pairwise: true,
  },
  // No reward model in the page: PPO-max's critic starts from the policy with a new head.
  {
    name: 'ppo-max',
    label: 'PPO-max',
    plugin: ppoMaxPlugin,
    pluginConfig: { lr: 1e-3, criticLr: 1e-3, epochs: 2, minibatchSize: 4, criticInit: 'policy' },
    pairwise: false,
  },
];

export function algorithmByName(name: string): Algorithm {
  const algo = ALGORITHMS.find((a) => a.name === name);
  if (!algo) {
    throw new Error(
      `algo=${name} is not an optimizer here; use one of ${ALGORITHMS.map((a) => a.name).join(', ')}.`,
    );
  }
  return algo;
}
