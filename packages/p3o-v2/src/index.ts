/**
 * @relign/p3o-v2 — P3O-V2 (Pairwise Proximal Policy Optimization, Wu et al. 2023, arXiv 2310.00212) as a relign
 * optimizer plugin. The default export is the plugin; the pure loss is exported for checks and reuse.
 */
import { p3oV2Plugin } from './plugin.js';

export default p3oV2Plugin;
export { p3oV2Plugin, p3oV2ConfigSchema, type P3OV2Config } from './plugin.js';
export { p3oV2Loss } from './loss.js';
export { type PairBatch as P3OPairBatch } from '@relign/core';
export { P3O_DEFAULT_OPTIONS, type P3OOptions, type P3OStats, type P3OLossResult } from '@relign/p3o';
