/**
 * Gradient registrations and chained ops (`x.mul(y)`), without the rest of `@tensorflow/tfjs` (layers,
 * converter, data, webgl: ~100 MB of install).
 *
 * tfjs-core's Node build (`tf-core.node.js`) registers neither; only its unbundled ESM files do, and Node
 * cannot load those (extensionless relative imports). tsup therefore bundles these two modules, and the op
 * code they need, into relign's dist (`noExternal` in tsup.config.ts); under vitest, vite transforms them itself (it inlines ESM
 * that Node cannot import). tfjs keeps its engine and its gradient registry on a global, so
 * this copy registers on the same engine as the user's tfjs-core: the same thing `@tensorflow/tfjs`'s own Node
 * bundle does.
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
