export { p3oV1Loss } from './loss.js';
export {
  P3O_DEFAULT_OPTIONS,
  type P3OPairBatch,
  type P3OOptions,
  type P3OStats,
  type P3OLossResult,
} from './pairs.js';
