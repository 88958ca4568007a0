/**
 * The file I/O the model uses, all from @relign/tensor (safetensors with atomic writes). Kept in one module
 * so the model files share one import site.
 */
// TEMPORARY (until @relign/tensor's index exports them): relative source imports.
export { readSafetensors, writeSafetensors } from '../../../tensor/src/io/safetensors.js';
export { writeFileAtomic } from '../../../tensor/src/io/atomic.js';
