/**
 * The browser entry of @relign/reward-model (package.json `exports["."].browser`): the same API as the Node entry,
 * which holds no Node-only code (its dependencies' browser entries stand in for theirs).
 */
export * from './index.js';
