/**
 * @relign/p3o — the math shared by P3O-V1 and P3O-V2 (Pairwise Proximal Policy Optimization, Wu et al. 2023,
 * arXiv 2310.00212; docs/algorithms.md §1): the loss options and their defaults, the detached KL-regularised
 * reward difference `q`, the `p3o/*` statistics, and the plugin config. The plugins are `@relign/p3o-v1` and
 * `@relign/p3o-v2`; the pair machinery they run on (batches of pairs, the pairwise optimizer loop) is in
 * `@relign/core`.
 */
export {
  P3O_DEFAULT_OPTIONS,
  resolveP3OOptions,
  p3oConfigSchema,
  type P3OOptions,
  type P3OConfig,
} from './options.js';
export { pairQ, pairStats, type P3OStats, type P3OLossResult } from './pair-q.js';
