/**
 * The causal language model of @relign/lm, for every supported architecture (`model_type` "gpt2", "llama",
 * "qwen2", "qwen3"; see gpt2.ts and llama.ts). This class owns what they share: parameters as tfjs variables
 * under their Hugging Face names, argument checks, padding masks, position ids, the attention bias, the KV
 * cache and the adapter seam (projection-hook.ts).
 *
 * Browser-safe: reading and writing model folders lives in load-node.ts, reached through
 * {@link CausalLM.fromPretrained} and {@link CausalLM.save} by a dynamic import.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attentionBias, causalBias, keyPaddingBias } from './attention.js';
import type { Architecture, Backbone, StepContext } from './backbone.js';
import { matchCheckpoint, type CheckpointTensor } from './checkpoint.js';
import { gpt2Architecture } from './gpt2.js';
import { createRng, uniqueVariableScope } from './init.js';
import { finishKV, KVCache, planKV } from './kv-cache.js';
import { llamaArchitecture } from './llama.js';
import {
  isGPT2Config,
  modelConfigToJSON,
  modelDims,
  modelExtraFields,
  resolveModelConfig,
  type ModelConfig,
  type ModelConfigInput,
  type ModelDims,
} from './model-config.js';
import { initialValue, sizeOf, type ParamSpec } from './params.js';
import type { ResolveModelOptions } from '../hub/resolve.js';
import type { ProjectionHook } from './projection-hook.js';
import { checkModelSize } from './size.js';

/** File names of a checkpoint directory (HF's). */
export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

/** A 2-D batch given as a tensor or as nested arrays (rows of equal length). */
export type Batch2D = tf.Tensor2D | number[][];

export interface ForwardOptions {
  /**
   * [B, Tpast + T] (or [B, T]: then the cache's stored mask is prepended) of 0/1, int32 or float32: 1 marks
   * real tokens, 0 padding (left or right). Default: all ones. Not disposed.
   */
  attentionMask?: Batch2D;
  /**
   * [B, T] position ids (int32 or float32). Default: derived from the mask as `cumsum(mask) - 1`, clamped at
   * 0 (so left padding works), continuing from the cache's positions. Not disposed.
   */
  positionIds?: Batch2D;
  /** Past keys/values to continue from (see {@link KVCache} for ownership). Implies `useCache`. */
  cache?: KVCache;
  /** Return a cache even when none was passed (the prefill step). */
  useCache?: boolean;
  /**
   * Positions to reserve in the returned cache (prompt + tokens to decode), where the backend preallocates
   * it (wasm): decoding up to this length then writes each step's keys/values in place instead of copying
   * the cache. Without it the storage doubles as needed. Other backends ignore it. At least 1.
   */
  cacheCapacity?: number;
}

/** What {@link CausalLM.forward} returns; the caller owns (and disposes) every tensor and the cache. */
export interface ForwardResult {
  /** [B, T, V] next-token logits at each input position. */
  logits: tf.Tensor3D;
  /** [B, T, D] final hidden states (after the final norm, `ln_f` / `model.norm`), the input of scalar heads. */
  hidden: tf.Tensor3D;
  /** The extended cache, present when `cache` or `useCache` was given. */
  cache?: KVCache;
}

export interface CreateOptions {
  /** Whether the parameters are trainable (seen by optimizers and `tf.variableGrads`). Default true. */
  trainable?: boolean;
  /**
   * Refuse a config whose float32 parameters need more bytes than this, before allocating anything.
   * Default: the machine's total memory (`os.totalmem()`). See `checkModelSize`.
   */
  maxParameterBytes?: number;
}

/** How weights are stored in a model folder. */
export interface WeightsLayout {
  /** Storage dtype of the float weights (F16/BF16 rounded to nearest even on save). */
  dtype: 'F32' | 'F16' | 'BF16';
  /** Largest shard in bytes; weights that fit are one `model.safetensors`. */
  maxShardBytes?: number;
}

export interface LoadOptions extends CreateOptions {
  /**
   * Reject checkpoint tensors that are not parameters of the architecture (buffers like GPT-2's `attn.bias`
   * or Llama's `rotary_emb.inv_freq`, and a tied `lm_head.weight`, are always accepted). Default true.
   */
  strict?: boolean;
  /** Hub download settings (revision, token, offline, ...), used when `fromPretrained` gets a Hub id. */
  hub?: ResolveModelOptions;
}

/** The architecture implementing `config`. */
export function architectureOf(config: ModelConfig): Architecture<ModelConfig> {
  return (isGPT2Config(config) ? gpt2Architecture : llamaArchitecture) as Architecture<ModelConfig>;
}

/** Every parameter of a model with `config`, in checkpoint (and init) order. */
export function modelParameterSpecs(config: ModelConfig): ParamSpec[] {
  return architectureOf(config).parameterSpecs(config);
}

/**
 * The causal LM. Create with {@link CausalLM.create} (seeded random init), {@link CausalLM.fromPretrained}
 * (a folder or Hub id) or {@link CausalLM.fromWeights} (tensors in memory); free with {@link CausalLM.dispose}.
 */
export class CausalLM {
  /** The resolved configuration (HF field names; GPT-2's has no `model_type`, see `modelTypeOf`). */
  readonly config: ModelConfig;
  /** Vocabulary size, hidden width, layers, heads, context length, whatever the architecture calls them. */
  readonly dims: ModelDims;
  private readonly vars: Map<string, tf.Variable>;
  private readonly body: Backbone;
  private readonly extras: Record<string, unknown>;
  /** How the loaded weights were stored (set by `fromPretrained`; undefined for a created model). */
  weightsLayout: WeightsLayout | undefined;
  private hook: ProjectionHook | null = null;
  private disposed = false;

  private constructor(
    config: ModelConfig,
    values: (spec: ParamSpec) => Float32Array | tf.Tensor,
    trainable: boolean,
    extras: Record<string, unknown>,
  ) {
    this.config = config;
    this.dims = modelDims(config);
    this.extras = extras;
    this.vars = new Map();
    const arch = architectureOf(config);
    const specs = arch.parameterSpecs(config);
    // tfjs variable names are global: prefix them so several models (policy, reference) can coexist.
    const scope = uniqueVariableScope(arch.scope, specs[0]!.name);
    try {
      for (const spec of specs) {
        const v = tf.tidy(() => {
          const value = values(spec);
          const init = value instanceof tf.Tensor ? value : tf.tensor(value, spec.shape, 'float32');
          return tf.variable(init, trainable, `${scope}/${spec.name}`, 'float32');
        });
        this.vars.set(spec.name, v);
      }
    } catch (err) {
      for (const v of this.vars.values()) v.dispose();
      throw err;
    }
    this.body = arch.backbone(config, this.vars);
  }

  /**
   * A freshly initialised model (the architecture's HF init, see `parameterSpecs` / `llamaParameterSpecs`).
   * Same config and seed -> bit-identical weights on every backend.
   *
   * @param config a GPT-2 config (no `model_type` needed) or a Llama/Qwen2/Qwen3 one (`model_type` set);
   *   validated (errors name the field).
   */
  static create(
    config: ModelConfigInput,
    seed: number | string = 0,
    { trainable = true, maxParameterBytes }: CreateOptions = {},
  ): CausalLM {
    const resolved = resolveModelConfig(config, 'CausalLM.create: config');
    checkModelSize(resolved, 'CausalLM.create: config', maxParameterBytes);
    const rng = createRng(seed);
    return new CausalLM(resolved, (spec) => initialValue(spec, rng), trainable, {});
  }

  /**
   * A model from a config and its tensors in memory, by HF name (GPT-2 names with or without `transformer.`).
   * Browser-safe (no file access): {@link fromPretrained} reads the files and calls this.
   *
   * @param rawConfig a parsed config.json (its unknown fields are kept for saving) or a resolved config.
   * @param source what error messages call the weights (e.g. the file path).
   * @throws Error listing every missing / wrong-shape / unexpected tensor.
   */
  static fromWeights(
    rawConfig: ModelConfigInput | Record<string, unknown>,
    tensors: ReadonlyMap<string, CheckpointTensor>,
    {
      trainable = true,
      strict = true,
      maxParameterBytes,
      source = 'weights',
      configSource = 'config',
    }: LoadOptions & { source?: string; configSource?: string } = {},
  ): CausalLM {
    const config = resolveModelConfig(rawConfig, configSource);
    checkModelSize(config, configSource, maxParameterBytes);
    const data = matchCheckpoint(tensors, modelParameterSpecs(config), config, { strict, source });
    const extras = extrasOf(config, rawConfig as Record<string, unknown>);
    return new CausalLM(config, (spec) => data.get(spec.name)!, trainable, extras);
  }

  /**
   * Loads a model folder in the Hugging Face layout (`config.json`, `model.safetensors` or sharded
   * `model.safetensors.index.json`; F32, F16 or BF16 weights, converted to float32), or a Hub id, which is
   * downloaded to (or found in) the HF cache. The architecture comes from config.json's `model_type`.
   * Tokenizer files are not read here (see the tokenizer module). Node only.
   *
   * @throws Error naming the file and, for weights, every missing / wrong-shape / unexpected tensor.
   */
  static async fromPretrained(dirOrHubId: string, options: LoadOptions = {}): Promise<CausalLM> {
    const { loadPretrained } = await import('./load-node.js');
    return loadPretrained(dirOrHubId, options);
  }

  /**
   * Writes `dir/config.json` and the weights in the HF layout `transformers` loads (GPT-2: GPT2Model names,
   * no `transformer.` prefix, no tied `lm_head.weight`). Each file is written atomically; `dir` is created.
   * Node only.
   *
   * @param layout storage dtype and shard size. Default: float32 (lossless, which trainer checkpoints need),
   *   one `model.safetensors` up to transformers' 5 GB shards. `model.save(dir, model.weightsLayout)` writes
   *   the layout the model was loaded from (e.g. BF16 shards) back.
   */
  async save(dir: string, layout: Partial<WeightsLayout> = {}): Promise<void> {
    this.assertLive('save');
    const { saveModel } = await import('./load-node.js');
    await saveModel(this, dir, layout);
  }

  /** The config.json object of this model (unknown fields of a loaded config kept). */
  configJSON(): Record<string, unknown> {
    return modelConfigToJSON(this.config, this.extras);
  }

  /** Host copies of every parameter by HF name, in checkpoint order (what {@link save} writes). */
  async tensors(): Promise<Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>> {
    this.assertLive('tensors');
    const out = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.vars) {
      out.set(name, { dtype: 'float32', shape: v.shape.slice(), data: (await v.data()) as Float32Array });
    }
    return out;
  }

  /**
   * An independent copy: new variables holding the current values (later updates to either model do not
   * affect the other). `clone({ trainable: false })` is the frozen reference policy. The projection hook is
   * not copied.
   */
  clone({ trainable = true }: CreateOptions = {}): CausalLM {
    this.assertLive('clone');
    const copy = new CausalLM(this.config, (spec) => this.vars.get(spec.name)!.clone(), trainable, {
      ...this.extras,
    });
    copy.weightsLayout = this.weightsLayout;
    return copy;
  }

  /** Every parameter by HF name (GPT-2: no `transformer.` prefix), in checkpoint order. A new Map. */
  variables(): Map<string, tf.Variable> {
    this.assertLive('variables');
    return new Map(this.vars);
  }

  /** The parameters with `trainable` set (all or none, unless changed by hand), then the hook's (an adapter's). */
  trainableVariables(): Map<string, tf.Variable> {
    this.assertLive('trainableVariables');
    const own = [...this.vars].filter(([, v]) => v.trainable);
    return new Map([...own, ...(this.hook?.trainableVariables?.() ?? [])]);
  }

  /** Sets `trainable` on every parameter (freezing or unfreezing the model in place). */
  setTrainable(trainable: boolean): void {
    this.assertLive('setTrainable');
    for (const v of this.vars.values()) v.trainable = trainable;
  }

  /** Number of scalar parameters (a tied LM head is not counted twice). */
  numParameters(): number {
    let n = 0;
    for (const v of this.vars.values()) n += sizeOf(v.shape);
    return n;
  }

  /**
   * Attaches (or, with null, detaches) the adapter seam: every linear module then adds
   * `hook.delta(name, x, { training })` to its output (see projection-hook.ts). Clones do not inherit it.
   */
  setProjectionHook(hook: ProjectionHook | null): void {
    this.assertLive('setProjectionHook');
    this.hook = hook;
  }

  /** The attached projection hook, or null. */
  get projectionHook(): ProjectionHook | null {
    return this.hook;
  }

  /** Whether {@link dispose} was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Frees every parameter. Idempotent. Caches and forward results stay valid (they own their tensors). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.vars.values()) v.dispose();
  }

  /**
   * Runs the model.
   *
   * @param inputIds [B, T] int32 token ids (a tensor, not disposed, or nested arrays).
   * @returns logits [B, T, V], hidden [B, T, D] and, with `cache`/`useCache`, the extended cache. Padded
   *   positions get finite values of no meaning. The caller disposes everything returned.
   */
  forward(inputIds: Batch2D, options: ForwardOptions = {}): ForwardResult {
    return this.run(inputIds, options, true) as ForwardResult;
  }

  /** As {@link forward} without the LM head (cheaper when only hidden states are needed, e.g. a reward model). */
  forwardHidden(inputIds: Batch2D, options: ForwardOptions = {}): Omit<ForwardResult, 'logits'> {
    return this.run(inputIds, options, false);
  }

  private run(
    inputIds: Batch2D,
    options: ForwardOptions,
    withLogits: boolean,
  ): { logits?: tf.Tensor3D; hidden: tf.Tensor3D; cache?: KVCache } {
    this.assertLive('forward');
    const dims = this.dims;
    const past = options.cache;
    const wantCache = past !== undefined || options.useCache === true;
    const [B, T] = shape2D(inputIds, 'inputIds');
    if (inputIds instanceof tf.Tensor && inputIds.dtype !== 'int32') {
      throw new Error(
        `forward: inputIds must be an int32 tensor, got ${inputIds.dtype}. Use tf.tensor2d(ids, shape, 'int32').`,
      );
    }
    if (T === 0 || B === 0)
      throw new Error(`forward: inputIds has shape [${B}, ${T}]; B and T must be at least 1`);
    let tPast = 0;
    if (past !== undefined) {
      if (past.isDisposed) throw new Error('forward: the cache passed in options.cache was disposed');
      if (past.numLayers !== dims.numLayers) {
        throw new Error(
          `forward: the cache has ${past.numLayers} layers but the model has ${dims.numLayers}`,
        );
      }
      if (past.batchSize !== B) {
        throw new Error(`forward: the cache has batch size ${past.batchSize} but inputIds has ${B} rows`);
      }
      tPast = past.length;
    }
    const Tk = tPast + T;
    const cap = options.cacheCapacity;
    if (cap !== undefined && !(Number.isInteger(cap) && cap >= 1)) {
      throw new Error(
        `forward: options.cacheCapacity must be a positive integer (positions to reserve), got ${String(cap)}`,
      );
    }
    let maskWidth = 0;
    if (options.attentionMask !== undefined) {
      const [mb, mt] = shape2D(options.attentionMask, 'attentionMask');
      if (mb !== B || (mt !== Tk && !(past !== undefined && mt === T))) {
        throw new Error(
          `forward: attentionMask has shape [${mb}, ${mt}]; expected [${B}, ${Tk}] (past + new tokens)` +
            (past !== undefined ? ` or [${B}, ${T}] (new tokens only)` : ''),
        );
      }
      maskWidth = mt;
    }
    if (options.positionIds !== undefined) {
      const [pb, pt] = shape2D(options.positionIds, 'positionIds');
      if (pb !== B || pt !== T) {
        throw new Error(`forward: positionIds has shape [${pb}, ${pt}]; expected [${B}, ${T}] like inputIds`);
      }
    } else if (isGPT2Config(this.config) && Tk > this.config.n_positions) {
      // Learned positions (GPT-2) end at n_positions; rotary ones have no hard limit.
      throw new Error(
        `forward: sequence length ${Tk} (cached ${tPast} + new ${T}) exceeds n_positions=${this.config.n_positions}. ` +
          'Truncate the input, or pass positionIds if padding makes it longer than its real length.',
      );
    }

    // No padding so far and default positions: positions are tPast + t in every row.
    const dense =
      options.attentionMask === undefined &&
      options.positionIds === undefined &&
      (past === undefined || past.dense);

    // Preallocated KV storage (wasm, no gradient tape), or undefined: the concat path.
    const kvPlan = wantCache ? planKV(past, T, cap, dims.maxPositions) : undefined;

    const out = tf.tidy(() => {
      const ids = inputIds instanceof tf.Tensor ? inputIds : tf.tensor2d(inputIds, [B, T], 'int32');

      // Masks: `full` covers past + new keys, `fresh` the new tokens only; 1 = real token, 0 = padding
      // (docs/algorithms.md §4.1: prompts are left-padded, responses right-padded). `fresh` undefined: no mask given, all new
      // tokens are real. `full` undefined: no padding anywhere (dense), so no mask is built at all.
      let full: tf.Tensor2D | undefined;
      let fresh: tf.Tensor2D | undefined;
      if (options.attentionMask !== undefined) {
        const m = toFloat2D(options.attentionMask);
        if (maskWidth === Tk) {
          full = m;
          fresh = tPast === 0 ? m : tf.slice(m, [0, tPast], [B, T]);
        } else {
          fresh = m;
          full = tf.concat([past!.mask, m], 1);
        }
      } else if (!dense) {
        const ones = tf.ones([B, T]) as tf.Tensor2D;
        full = past !== undefined ? tf.concat([past.mask, ones], 1) : ones;
      }

      // Positions (undefined when dense): continue each row from its next free position; pads before the first
      // real token clamp to 0.
      const prevNext = past?.nextPosition;
      let positions: tf.Tensor2D | undefined;
      if (!dense) {
        if (options.positionIds !== undefined) {
          positions = toFloat2D(options.positionIds);
        } else if (fresh === undefined && T === 1 && prevNext !== undefined) {
          // One real token per row (a decode step without a mask): it takes the row's next position.
          positions = tf.reshape(prevNext, [B, 1]) as tf.Tensor2D;
        } else {
          const f = fresh ?? tf.ones([B, T]);
          const prev = prevNext ?? tf.zeros([B]);
          positions = tf.maximum(
            tf.sub(tf.add(tf.cumsum(f, 1), tf.reshape(prev, [B, 1])), 1),
            0,
          ) as tf.Tensor2D;
        }
      }
      // One query per row sees every cached key (causality allows them all): only padding needs a bias.
      let bias: tf.Tensor4D | undefined;
      if (full === undefined) bias = T === 1 ? undefined : causalBias(tPast, T);
      else bias = T === 1 ? keyPaddingBias(full) : attentionBias(full, tPast, T);

      const ctx: StepContext = {
        B,
        T,
        tPast,
        ids,
        positions,
        bias,
        past,
        wantCache,
        kvPlan,
        keys: [],
        values: [],
        hook: this.hook,
        training: tf.engine().state.gradientDepth > 0,
      };
      const hidden2 = this.body.hidden(ctx);
      const result: {
        hidden: tf.Tensor3D;
        logits?: tf.Tensor3D;
        keys: tf.Tensor4D[];
        values: tf.Tensor4D[];
        mask?: tf.Tensor2D;
        next?: tf.Tensor1D;
      } = { hidden: tf.reshape(hidden2, [B, T, dims.hiddenSize]), keys: ctx.keys, values: ctx.values };
      if (withLogits) {
        result.logits = tf.reshape(this.body.logits(hidden2), [B, T, dims.vocabSize]);
      }
      if (wantCache) {
        // Next free position per row: one past the largest position of a real token (unchanged if none).
        if (positions === undefined) {
          result.next = tf.fill([B], tPast + T);
        } else if (fresh === undefined && options.positionIds === undefined && prevNext !== undefined) {
          result.next = tf.add(prevNext, T) as tf.Tensor1D; // T real tokens at prev..prev+T-1
        } else {
          const f = fresh ?? tf.ones([B, T]);
          const prev = prevNext ?? tf.zeros([B]);
          result.next = tf.maximum(prev, tf.max(tf.mul(f, tf.add(positions, 1)), 1)) as tf.Tensor1D;
        }
        // The mask is always a tensor made here (a cast, concat or ones), never the caller's or the old cache's.
        result.mask = full ?? (tf.ones([B, Tk]) as tf.Tensor2D);
      }
      return result;
    });

    const res: { logits?: tf.Tensor3D; hidden: tf.Tensor3D; cache?: KVCache } = { hidden: out.hidden };
    if (out.logits !== undefined) res.logits = out.logits;
    if (wantCache) res.cache = finishKV(kvPlan, past, out.keys, out.values, out.mask!, out.next!, dense);
    return res;
  }

  private assertLive(what: string): void {
    if (this.disposed) throw new Error(`CausalLM.${what}: the model was disposed`);
  }
}

/** Unknown fields of a raw config.json (kept on save); none for an already-resolved config. */
function extrasOf(config: ModelConfig, raw: Record<string, unknown>): Record<string, unknown> {
  return (raw as unknown) === config ? {} : modelExtraFields(config, raw);
}

function shape2D(x: Batch2D, name: string): [number, number] {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 2) throw new Error(`forward: ${name} must be rank 2 [B, T], got shape [${x.shape}]`);
    return [x.shape[0]!, x.shape[1]!];
  }
  if (!Array.isArray(x) || x.length === 0 || !Array.isArray(x[0])) {
    throw new Error(`forward: ${name} must be a [B, T] tensor or a non-empty array of rows`);
  }
  const T = x[0].length;
  if (x.some((row) => !Array.isArray(row) || row.length !== T)) {
    throw new Error(`forward: ${name} rows must all have length ${T}`);
  }
  return [x.length, T];
}

/** A float32 copy (inside the caller's tidy) of a 0/1 mask or position batch. */
function toFloat2D(x: Batch2D): tf.Tensor2D {
  if (x instanceof tf.Tensor) return tf.cast(x, 'float32');
  return tf.tensor2d(x, undefined, 'float32');
}
