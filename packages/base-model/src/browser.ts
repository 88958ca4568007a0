/**
 * The browser entry of @relign/base-model (package.json `exports["."].browser`). `loadBaseModel()` fetches the
 * shipped files from the URLs a bundler gives them (see {@link baseModelUrls}); `baseModelDir()` (a path) is
 * Node-only and absent here.
 */
import { baseModelUrls, loadBaseModelFrom, type BaseModel, type LoadBaseModelOptions } from './files.js';

export * from './files.js';

/**
 * Loads the base model and its tokenizer from the bundled files. Call `initBackend()` of `@relign/tensor` first.
 * The caller owns the model: `model.dispose()`.
 */
export async function loadBaseModel(options: LoadBaseModelOptions = {}): Promise<BaseModel> {
  return loadBaseModelFrom(baseModelUrls(), options);
}
