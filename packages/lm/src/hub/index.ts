/** Hugging Face Hub downloads into the shared cache (node only: uses the file system). */
export {
  resolveModelDir,
  DEFAULT_MODEL_FILES,
  DEFAULT_HUB_ENDPOINT,
  type ResolveModelOptions,
} from './resolve.js';
export { terminalProgress, type DownloadProgress } from './progress.js';
export { hubCacheDir, hfHome, repoCacheDir } from './cache.js';
export { downloadBlob, HubHttpError, type DownloadBlobOptions } from './download.js';
