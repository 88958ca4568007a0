/**
 * The browser entry of @relign/tensor (package.json `exports["."].browser`): the same API as the Node entry.
 * File functions (readSafetensors, writeFileAtomic, checkpoint and safetensors directories) are present but reject
 * with a clear error there, since `#platform` resolves to the browser stand-in; parse and serialize safetensors
 * bytes instead (parseSafetensors, serializeSafetensors).
 */
export * from './index.js';
