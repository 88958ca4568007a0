/**
 * Node-only file access of `CausalLM`: reading a model folder in the Hugging Face layout (config.json plus
 * `model.safetensors` or sharded `model.safetensors.index.json`, F32/F16/BF16) and writing one back.
 * Kept apart from causal-lm.ts so the model itself stays browser-safe; reached by dynamic import. File access
 * goes through @relign/tensor's platform module, which rejects with a clear error in a browser.
 */
import { nodeFs, nodePath, readSafetensorsDir, writeFileAtomic, writeSafetensorsDir } from '@relign/tensor';
import { resolveModelDir, type ResolveModelOptions } from '../hub/index.js';
import { CausalLM, CONFIG_FILE, WEIGHTS_FILE, type LoadOptions, type WeightsLayout } from './causal-lm.js';
import { resolveModelConfig } from './model-config.js';
import { checkModelSize } from './size.js';

/** `org/name` as on the Hub, and not a path to something that exists here. */
function looksLikeHubId(s: string): boolean {
  return !nodePath.isAbsolute(s) && !s.startsWith('.') && /^[\w.-]+\/[\w.-]+$/.test(s);
}

async function isDirectory(path: string): Promise<boolean> {
  return nodeFs.stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** The local folder of `dirOrHubId`: itself, or the Hub snapshot (downloaded or cached) of a Hub id. */
async function modelDir(dirOrHubId: string, hub: ResolveModelOptions | undefined): Promise<string> {
  if ((await isDirectory(dirOrHubId)) || !looksLikeHubId(dirOrHubId)) return dirOrHubId;
  return resolveModelDir(dirOrHubId, hub);
}

/** See `CausalLM.fromPretrained`. */
export async function loadPretrained(dirOrHubId: string, options: LoadOptions = {}): Promise<CausalLM> {
  const dir = await modelDir(dirOrHubId, options.hub);
  const configPath = nodePath.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await nodeFs.readFile(configPath, 'utf8');
  } catch (err) {
    throw new Error(
      `CausalLM.fromPretrained: cannot read ${configPath} (${(err as Error).message}). ` +
        `A model directory needs config.json and ${WEIGHTS_FILE} (or sharded weights), in the Hugging Face layout.`,
      { cause: err },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`CausalLM.fromPretrained: ${configPath} is not valid JSON (${(err as Error).message})`);
  }
  // Validate the config (and its size) before reading any weights.
  checkModelSize(
    resolveModelConfig(raw as Record<string, unknown>, configPath),
    configPath,
    options.maxParameterBytes,
  );
  // finite: a NaN/Inf weight is refused here, by name, rather than surfacing as NaN losses later.
  const file = await readSafetensorsDir(dir, { finite: true, maxBytes: options.maxParameterBytes }).catch(
    (err: Error) => {
      throw new Error(`CausalLM.fromPretrained: ${err.message}`, { cause: err });
    },
  );
  const source = file.sharded ? nodePath.join(dir, 'model.safetensors.index.json') : file.files[0]!;
  const model = CausalLM.fromWeights(raw as Record<string, unknown>, file.tensors, {
    ...options,
    source,
    configSource: configPath,
  });
  const dtypes = new Set(file.storedDtypes.values());
  const dtype = dtypes.size === 1 && (dtypes.has('F16') || dtypes.has('BF16')) ? [...dtypes][0]! : 'F32';
  let maxShardBytes: number | undefined;
  if (file.sharded) {
    maxShardBytes = Math.max(
      ...(await Promise.all(file.files.map(async (f) => (await nodeFs.stat(f)).size))),
    );
  }
  model.weightsLayout = {
    dtype: dtype as WeightsLayout['dtype'],
    ...(maxShardBytes ? { maxShardBytes } : {}),
  };
  return model;
}

/** See `CausalLM.save`: the weights (single file or shards), then config.json. */
export async function saveModel(model: CausalLM, dir: string, layout: Partial<WeightsLayout>): Promise<void> {
  await writeSafetensorsDir(dir, await model.tensors(), {
    dtype: layout.dtype ?? 'F32',
    ...(layout.maxShardBytes !== undefined ? { maxShardBytes: layout.maxShardBytes } : {}),
  });
  await writeFileAtomic(nodePath.join(dir, CONFIG_FILE), JSON.stringify(model.configJSON(), null, 2) + '\n');
}
