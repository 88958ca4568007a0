/**
 * A GPT-2-architecture causal language model on TensorFlow.js: learned positions, pre-LayerNorm blocks,
 * causal multi-head attention, tanh-form GELU MLP, final LayerNorm, LM head tied to the token embedding.
 * Weights and config use the Hugging Face GPT-2 layout, so real GPT-2-family checkpoints load as is.
 *
 * Not implemented: dropout (RLHF fine-tuning runs with dropout off, as TRL does for PPO; the config's
 * `*_pdrop` fields are ignored and saved as 0).
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  attend,
  attentionBias,
  causalBias,
  keyPaddingBias,
  mergeHeads,
  splitHeads,
  splitQkvHeads,
} from './attention.js';
import { matchCheckpoint } from './checkpoint.js';
import {
  configToJSON,
  extraConfigFields,
  resolveConfig,
  type GPT2Config,
  type GPT2ConfigInput,
} from './config.js';
import { createRng, uniqueVariableScope } from './init.js';
import { readSafetensors, writeFileAtomic, writeSafetensors } from './io.js';
import { checkModelSize } from './size.js';
import { KVCache } from './kv-cache.js';
import { gelu, layerNorm, linear, qkvProjection } from './layers.js';
import { initialValue, parameterSpecs, sizeOf, type ParamSpec } from './params.js';

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
}

/** What {@link CausalLM.forward} returns; the caller owns (and disposes) every tensor and the cache. */
export interface ForwardResult {
  /** [B, T, V] next-token logits at each input position. */
  logits: tf.Tensor3D;
  /** [B, T, D] final hidden states (after `ln_f`), the input of scalar heads. */
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

export interface LoadOptions extends CreateOptions {
  /**
   * Reject checkpoint tensors that are not GPT-2 parameters (buffers like `attn.bias` and a tied
   * `lm_head.weight` are always accepted). Default true.
   */
  strict?: boolean;
}

interface Block {
  ln1g: tf.Variable;
  ln1b: tf.Variable;
  attnW: tf.Variable;
  attnB: tf.Variable;
  projW: tf.Variable;
  projB: tf.Variable;
  ln2g: tf.Variable;
  ln2b: tf.Variable;
  fcW: tf.Variable;
  fcB: tf.Variable;
  mlpProjW: tf.Variable;
  mlpProjB: tf.Variable;
}

/**
 * The causal LM. Create with {@link CausalLM.create} (seeded random init) or {@link CausalLM.fromPretrained};
 * free with {@link CausalLM.dispose}.
 */
export class CausalLM {
  /** The resolved configuration (HF field names). */
  readonly config: GPT2Config;
  private readonly vars: Map<string, tf.Variable>;
  private readonly blocks: Block[];
  private readonly extras: Record<string, unknown>;
  private disposed = false;

  private constructor(
    config: GPT2Config,
    values: (spec: ParamSpec) => Float32Array | tf.Tensor,
    trainable: boolean,
    extras: Record<string, unknown>,
  ) {
    this.config = config;
    this.extras = extras;
    this.vars = new Map();
    // tfjs variable names are global: prefix them so several models (policy, reference) can coexist.
    const scope = uniqueVariableScope('relign_gpt2', 'wte.weight');
    try {
      for (const spec of parameterSpecs(config)) {
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
    this.blocks = [];
    for (let i = 0; i < config.n_layer; i++) {
      const g = (n: string) => this.vars.get(`h.${i}.${n}`)!;
      this.blocks.push({
        ln1g: g('ln_1.weight'),
        ln1b: g('ln_1.bias'),
        attnW: g('attn.c_attn.weight'),
        attnB: g('attn.c_attn.bias'),
        projW: g('attn.c_proj.weight'),
        projB: g('attn.c_proj.bias'),
        ln2g: g('ln_2.weight'),
        ln2b: g('ln_2.bias'),
        fcW: g('mlp.c_fc.weight'),
        fcB: g('mlp.c_fc.bias'),
        mlpProjW: g('mlp.c_proj.weight'),
        mlpProjB: g('mlp.c_proj.bias'),
      });
    }
  }

  /**
   * A freshly initialised model (GPT-2 init, see `parameterSpecs`). Same config and seed -> bit-identical
   * weights on every backend.
   *
   * @param config the shape fields (`vocab_size`, `n_positions`, `n_embd`, `n_layer`, `n_head`) and any
   *   other HF GPT-2 config field; validated (errors name the field).
   */
  static create(
    config: GPT2ConfigInput,
    seed: number | string = 0,
    { trainable = true, maxParameterBytes }: CreateOptions = {},
  ): CausalLM {
    const resolved = resolveConfig(config);
    checkModelSize(resolved, 'CausalLM.create: config', maxParameterBytes);
    const rng = createRng(seed);
    return new CausalLM(resolved, (spec) => initialValue(spec, rng), trainable, {});
  }

  /**
   * Loads `dir/config.json` and `dir/model.safetensors` (HF GPT-2 layout, with or without the
   * `transformer.` prefix). Tokenizer files in `dir` are not read here (see the tokenizer module).
   *
   * @throws Error naming the file and, for weights, every missing / wrong-shape / unexpected tensor.
   */
  static async fromPretrained(
    dir: string,
    { trainable = true, strict = true, maxParameterBytes }: LoadOptions = {},
  ): Promise<CausalLM> {
    const configPath = join(dir, CONFIG_FILE);
    let text: string;
    try {
      text = await readFile(configPath, 'utf8');
    } catch (err) {
      throw new Error(
        `CausalLM.fromPretrained: cannot read ${configPath} (${(err as Error).message}). ` +
          'A model directory needs config.json and model.safetensors (Hugging Face layout).',
        { cause: err },
      );
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new Error(`CausalLM.fromPretrained: ${configPath} is not valid JSON (${(err as Error).message})`);
    }
    const config = resolveConfig(raw as Record<string, unknown>, configPath);
    checkModelSize(config, configPath, maxParameterBytes);
    const weightsPath = join(dir, WEIGHTS_FILE);
    // finite: a NaN/Inf weight is refused here, by name, rather than surfacing as NaN losses later.
    const file = await readSafetensors(weightsPath, { finite: true }).catch((err: Error) => {
      throw new Error(
        `CausalLM.fromPretrained: ${err.message}` +
          (String(err.message).includes('ENOENT')
            ? ` (only ${WEIGHTS_FILE} is read: convert pytorch_model.bin with transformers' save_pretrained(safe_serialization=True))`
            : ''),
        { cause: err },
      );
    });
    const specs = parameterSpecs(config);
    const data = matchCheckpoint(file.tensors, specs, config, { strict, source: weightsPath });
    return new CausalLM(
      config,
      (spec) => data.get(spec.name)!,
      trainable,
      extraConfigFields(raw as Record<string, unknown>),
    );
  }

  /**
   * Writes `dir/config.json` (HF GPT2LMHeadModel config) and `dir/model.safetensors` (HF GPT2Model names,
   * no `transformer.` prefix, no `lm_head.weight`: the layout of the original `gpt2` hub checkpoint, which
   * `GPT2LMHeadModel.from_pretrained` also loads). Each file is written atomically; `dir` is created.
   */
  async save(dir: string): Promise<void> {
    this.assertLive('save');
    await mkdir(dir, { recursive: true });
    const tensors = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.vars) {
      tensors.set(name, { dtype: 'float32', shape: v.shape.slice(), data: (await v.data()) as Float32Array });
    }
    await writeSafetensors(join(dir, WEIGHTS_FILE), tensors, { format: 'pt' });
    await writeFileAtomic(
      join(dir, CONFIG_FILE),
      JSON.stringify(configToJSON(this.config, this.extras), null, 2) + '\n',
    );
  }

  /**
   * An independent copy: new variables holding the current values (later updates to either model do not
   * affect the other). `clone({ trainable: false })` is the frozen reference policy.
   */
  clone({ trainable = true }: CreateOptions = {}): CausalLM {
    this.assertLive('clone');
    return new CausalLM(this.config, (spec) => this.vars.get(spec.name)!.clone(), trainable, {
      ...this.extras,
    });
  }

  /** Every parameter by HF name (no prefix), in checkpoint order. A new Map; the variables are the model's. */
  variables(): Map<string, tf.Variable> {
    this.assertLive('variables');
    return new Map(this.vars);
  }

  /** The parameters with `trainable` set (all or none, unless changed by hand). */
  trainableVariables(): Map<string, tf.Variable> {
    this.assertLive('trainableVariables');
    return new Map([...this.vars].filter(([, v]) => v.trainable));
  }

  /** Sets `trainable` on every parameter (freezing or unfreezing the model in place). */
  setTrainable(trainable: boolean): void {
    this.assertLive('setTrainable');
    for (const v of this.vars.values()) v.trainable = trainable;
  }

  /** Number of scalar parameters (the tied LM head is not counted twice). */
  numParameters(): number {
    let n = 0;
    for (const v of this.vars.values()) n += sizeOf(v.shape);
    return n;
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
    const cfg = this.config;
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
      if (past.numLayers !== cfg.n_layer) {
        throw new Error(
          `forward: the cache has ${past.numLayers} layers but the model has n_layer=${cfg.n_layer}`,
        );
      }
      if (past.batchSize !== B) {
        throw new Error(`forward: the cache has batch size ${past.batchSize} but inputIds has ${B} rows`);
      }
      tPast = past.length;
    }
    const Tk = tPast + T;
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
    } else if (Tk > cfg.n_positions) {
      throw new Error(
        `forward: sequence length ${Tk} (cached ${tPast} + new ${T}) exceeds n_positions=${cfg.n_positions}. ` +
          'Truncate the input, or pass positionIds if padding makes it longer than its real length.',
      );
    }

    const H = cfg.n_head;
    const D = cfg.n_embd;
    const scale = cfg.scale_attn_weights ? 1 / Math.sqrt(D / H) : 1;
    const eps = cfg.layer_norm_epsilon;
    const wte = this.vars.get('wte.weight')! as tf.Tensor2D;
    const wpe = this.vars.get('wpe.weight')! as tf.Tensor2D;

    // No padding so far and default positions: positions are tPast + t in every row.
    const dense =
      options.attentionMask === undefined &&
      options.positionIds === undefined &&
      (past === undefined || past.dense);

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

      // Positions: continue each row from its next free position; pads before the first real token clamp to 0.
      const prevNext = past?.nextPosition;
      let positions: tf.Tensor2D | undefined;
      let x: tf.Tensor2D;
      const tokens = tf.gather(wte, tf.reshape(ids, [B * T])) as tf.Tensor2D;
      if (dense) {
        // Every row sits at positions tPast..tPast+T-1: a slice of wpe, broadcast over the batch, instead of
        // a second gather.
        const pos = tf.slice(wpe, [tPast, 0], [T, D]);
        x =
          T === 1 ? tf.add(tokens, pos) : tf.reshape(tf.add(tf.reshape(tokens, [B, T, D]), pos), [B * T, D]);
      } else {
        let pos: tf.Tensor2D;
        if (options.positionIds !== undefined) {
          pos = toFloat2D(options.positionIds);
        } else if (fresh === undefined && T === 1 && prevNext !== undefined) {
          // One real token per row (a decode step without a mask): it takes the row's next position.
          pos = tf.reshape(prevNext, [B, 1]);
        } else {
          const f = fresh ?? tf.ones([B, T]);
          const prev = prevNext ?? tf.zeros([B]);
          pos = tf.maximum(tf.sub(tf.add(tf.cumsum(f, 1), tf.reshape(prev, [B, 1])), 1), 0);
        }
        positions = pos;
        x = tf.add(tokens, tf.gather(wpe, tf.reshape(tf.cast(pos, 'int32'), [B * T]))) as tf.Tensor2D;
      }
      // One query per row sees every cached key (causality allows them all): only padding needs a bias.
      let bias: tf.Tensor4D | undefined;
      if (full === undefined) bias = T === 1 ? undefined : causalBias(tPast, T);
      else bias = T === 1 ? keyPaddingBias(full) : attentionBias(full, tPast, T);

      const keys: tf.Tensor4D[] = [];
      const values: tf.Tensor4D[] = [];
      for (let i = 0; i < this.blocks.length; i++) {
        const blk = this.blocks[i]!;
        const h = layerNorm(x, blk.ln1g as tf.Tensor1D, blk.ln1b as tf.Tensor1D, eps);
        let q: tf.Tensor4D;
        let k: tf.Tensor4D;
        let v: tf.Tensor4D;
        if (T === 1) {
          [q, k, v] = splitQkvHeads(linear(h, blk.attnW as tf.Tensor2D, blk.attnB as tf.Tensor1D), H);
        } else {
          const [q2, k2, v2] = qkvProjection(h, blk.attnW as tf.Tensor2D, blk.attnB as tf.Tensor1D);
          q = splitHeads(q2, B, T, H);
          k = splitHeads(k2, B, T, H);
          v = splitHeads(v2, B, T, H);
        }
        if (past !== undefined) {
          k = tf.concat([past.keys[i]!, k], 2);
          v = tf.concat([past.values[i]!, v], 2);
        }
        if (wantCache) {
          keys.push(k);
          values.push(v);
        }
        const a = mergeHeads(attend(q, k, v, bias, scale));
        x = tf.add(x, linear(a, blk.projW as tf.Tensor2D, blk.projB as tf.Tensor1D));
        const h2 = layerNorm(x, blk.ln2g as tf.Tensor1D, blk.ln2b as tf.Tensor1D, eps);
        const m = gelu(linear(h2, blk.fcW as tf.Tensor2D, blk.fcB as tf.Tensor1D));
        x = tf.add(x, linear(m, blk.mlpProjW as tf.Tensor2D, blk.mlpProjB as tf.Tensor1D));
      }
      const hidden2 = layerNorm(
        x,
        this.vars.get('ln_f.weight')! as tf.Tensor1D,
        this.vars.get('ln_f.bias')! as tf.Tensor1D,
        eps,
      );
      const result: {
        hidden: tf.Tensor3D;
        logits?: tf.Tensor3D;
        keys: tf.Tensor4D[];
        values: tf.Tensor4D[];
        mask?: tf.Tensor2D;
        next?: tf.Tensor1D;
      } = { hidden: tf.reshape(hidden2, [B, T, D]), keys, values };
      if (withLogits) {
        // Tied head: logits = hidden @ wte^T.
        result.logits = tf.reshape(tf.matMul(hidden2, wte, false, true), [B, T, cfg.vocab_size]);
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
    if (wantCache) res.cache = new KVCache(out.keys, out.values, out.mask!, out.next!, dense);
    return res;
  }

  private assertLive(what: string): void {
    if (this.disposed) throw new Error(`CausalLM.${what}: the model was disposed`);
  }
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
