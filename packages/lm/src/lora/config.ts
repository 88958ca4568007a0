/**
 * LoRA settings and their file form, PEFT's `adapter_config.json`, so adapters trained here load with
 * `PeftModel.from_pretrained` and adapters trained with PEFT load here.
 *
 * The fields written are PEFT's `LoraConfig` fields with the values relign implements; a file that asks for
 * something relign does not implement (DoRA, per-module ranks, bias training, ...) is refused by name rather
 * than loaded with a different meaning.
 */

/** Module names targeted by default (PEFT's "all linear layers but the LM head" for these architectures). */
export const DEFAULT_TARGETS = {
  /** GPT-2's Conv1D modules: fused q/k/v, attention output, MLP in and out. */
  gpt2: ['c_attn', 'c_proj', 'c_fc'],
  /** Llama, Qwen2, Qwen3: attention q/k/v/o and the SwiGLU MLP projections. */
  llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
} as const;

/** GPT-2's HF Conv1D modules: weights stored [in, out] (PEFT's `fan_in_fan_out`). */
export const CONV1D_MODULES: ReadonlySet<string> = new Set(DEFAULT_TARGETS.gpt2);

/** What {@link attachLora} accepts; every field has PEFT's default. */
export interface LoraOptions {
  /** Rank r of each adapter (A is [r, in], B is [out, r]). Default 8. */
  r?: number;
  /** Scale numerator: the update is `(alpha / r) * B A x`. Default 8 (PEFT's). */
  loraAlpha?: number;
  /** Dropout on the adapter's input, applied only under a gradient tape (training). Default 0. */
  loraDropout?: number;
  /**
   * Which linear modules get an adapter: names matched against the end of each module path (`q_proj` matches
   * `model.layers.0.self_attn.q_proj`), or one string taken as a regular expression over the whole path
   * (PEFT's two forms). Default: {@link DEFAULT_TARGETS} for the model's architecture.
   */
  targetModules?: readonly string[] | string;
  /** Seed of A's initialisation and of the dropout masks. Default 0. */
  seed?: number | string;
  /** Written to `adapter_config.json` as `base_model_name_or_path` (a Hub id or a path). Default "". */
  baseModelNameOrPath?: string;
}

/** Resolved settings (every field present). */
export interface LoraConfig {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: readonly string[] | string;
  seed: number | string;
  baseModelNameOrPath: string;
}

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/**
 * Fills PEFT's defaults and checks every field.
 * @param defaultTargets the architecture's default target modules.
 * @throws Error naming the field and the accepted values.
 */
export function resolveLoraOptions(
  o: LoraOptions,
  defaultTargets: readonly string[],
  source = 'attachLora: options',
): LoraConfig {
  if (o === null || typeof o !== 'object') throw new Error(`${source} must be an object.`);
  const r = o.r ?? 8;
  if (!Number.isInteger(r) || r < 1)
    throw new Error(`${source}.r must be a positive integer, got ${String(r)}.`);
  const loraAlpha = o.loraAlpha ?? 8;
  if (typeof loraAlpha !== 'number' || !Number.isFinite(loraAlpha) || loraAlpha <= 0) {
    throw new Error(`${source}.loraAlpha must be a positive number, got ${String(loraAlpha)}.`);
  }
  const loraDropout = o.loraDropout ?? 0;
  if (typeof loraDropout !== 'number' || !(loraDropout >= 0 && loraDropout < 1)) {
    throw new Error(`${source}.loraDropout must be in [0, 1), got ${String(loraDropout)}.`);
  }
  const targetModules = o.targetModules ?? defaultTargets;
  if (typeof targetModules === 'string') {
    try {
      new RegExp(targetModules);
    } catch (err) {
      throw new Error(`${source}.targetModules is not a valid regular expression: ${(err as Error).message}`);
    }
  } else if (
    !Array.isArray(targetModules) ||
    targetModules.length === 0 ||
    targetModules.some((t) => typeof t !== 'string' || t === '')
  ) {
    throw new Error(
      `${source}.targetModules must be a non-empty list of module names (e.g. ["q_proj", "v_proj"]) or a regex string.`,
    );
  }
  const seed = o.seed ?? 0;
  const baseModelNameOrPath = o.baseModelNameOrPath ?? '';
  if (typeof baseModelNameOrPath !== 'string') {
    throw new Error(`${source}.baseModelNameOrPath must be a string (a Hub id or a path).`);
  }
  return { r, loraAlpha, loraDropout, targetModules, seed, baseModelNameOrPath };
}

/** Whether module path `name` is targeted (PEFT's rule: a list matches by suffix, a string is a full regex). */
export function isTargeted(name: string, targets: readonly string[] | string): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(name);
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/** The `adapter_config.json` PEFT writes for this config (`fanInFanOut`: GPT-2's Conv1D layout). */
export function adapterConfigJSON(c: LoraConfig, fanInFanOut: boolean): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: c.baseModelNameOrPath,
    revision: null,
    r: c.r,
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    target_modules: typeof c.targetModules === 'string' ? c.targetModules : [...c.targetModules],
    bias: 'none',
    fan_in_fan_out: fanInFanOut,
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_rslora: false,
    use_dora: false,
    inference_mode: true,
  };
}

/** Fields of a PEFT LoRA config that must keep their neutral value here (relign does not implement them). */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  bias: (v) => v === undefined || v === 'none',
  use_dora: (v) => v === undefined || v === false,
  use_rslora: (v) => v === undefined || v === false,
  modules_to_save: (v) => v === undefined || v === null || (Array.isArray(v) && v.length === 0),
  rank_pattern: (v) => v === undefined || v === null || Object.keys(v as object).length === 0,
  alpha_pattern: (v) => v === undefined || v === null || Object.keys(v as object).length === 0,
  layers_to_transform: (v) => v === undefined || v === null,
};

/**
 * Reads PEFT's `adapter_config.json` (already parsed) into {@link LoraOptions}.
 * @throws Error naming the file and field for a non-LoRA config or a feature relign does not implement.
 */
export function parseAdapterConfig(raw: unknown, source: string): LoraOptions {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${source}: expected a JSON object (PEFT's adapter_config.json).`);
  }
  const j = raw as Record<string, unknown>;
  if (j.peft_type !== 'LORA') {
    throw new Error(
      `${source}: peft_type is ${JSON.stringify(j.peft_type)}; only "LORA" adapters can be loaded.`,
    );
  }
  if (j.task_type !== undefined && j.task_type !== null && j.task_type !== 'CAUSAL_LM') {
    throw new Error(
      `${source}: task_type is ${JSON.stringify(j.task_type)}; relign loads "CAUSAL_LM" adapters.`,
    );
  }
  for (const [field, ok] of Object.entries(UNSUPPORTED)) {
    if (!ok(j[field])) {
      throw new Error(
        `${source}: ${field} is ${JSON.stringify(j[field])}, which relign's LoRA does not implement; ` +
          'merge the adapter in Python (merge_and_unload) or retrain without it.',
      );
    }
  }
  const targets = j.target_modules;
  if (!(typeof targets === 'string' || Array.isArray(targets))) {
    throw new Error(`${source}: target_modules must be a list of module names or a regex string.`);
  }
  return {
    r: j.r as number,
    loraAlpha: j.lora_alpha as number,
    loraDropout: (j.lora_dropout as number | undefined) ?? 0,
    targetModules: targets as string[] | string,
    baseModelNameOrPath: typeof j.base_model_name_or_path === 'string' ? j.base_model_name_or_path : '',
  };
}
