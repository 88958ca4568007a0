/**
 * The file I/O the model uses, all from @relign/tensor (safetensors with atomic writes). Kept in one module
 * so the model files share one import site.
 */
export { readSafetensors, writeSafetensors, writeFileAtomic } from '@relign/tensor';
