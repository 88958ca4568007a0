/**
 * The browser entry of @relign/p3o-v2 (package.json `exports["."].browser`): the same API as the Node entry,
 * which holds no Node-only code (its dependencies' browser entries stand in for theirs).
 */
export * from './index.js';
export { default } from './index.js';
