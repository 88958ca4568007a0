/**
 * A learned reward model: a GPT-2-architecture backbone from `@relign/lm` and a scalar head on its final
 * hidden states; the score of a sequence is the head's value at its last real token (docs/algorithms.md §2.2, §1.7).
 *
 * Folder layout (the LM's, plus the head and the normalisation statistics):
 * ```
 * config.json          the backbone's config (CausalLM.save)
 * model.safetensors    the backbone's tensors (HF GPT-2 names) and the head: score.weight [1, D]
 *                      (and score.bias [1] for a head with bias), as HF's GPT2ForSequenceClassification
 * reward_stats.json    the RewardNormalizer: options and running moments (docs/algorithms.md §2.3)
 * ```
 * `CausalLM.fromPretrained(dir, { strict: false })` loads the backbone alone from the same folder. Tokenizer
 * files are not written here; save the tokenizer into the same folder if you want one folder for all.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, ScalarHead, WEIGHTS_FILE, type ModelConfig, type ModelConfigInput } from '@relign/lm';
import { writeSafetensors, nodeFs, nodePath } from '@relign/tensor';
import { resolveInputs, type RewardInputs, type RewardTokenizer, type TokenIds } from './inputs.js';
import { REWARD_STATS_FILE, RewardNormalizer, type RewardNormalizerOptions } from './normalizer.js';
import { checkScoreOptions, checkScores, type RewardFunction, type ScoreOptions } from './reward-function.js';
import {
  disposeSequenceTensors,
  packSequences,
  selectLast,
  sequenceTensors,
  type PaddingSide,
  type SequenceTensors,
} from './sequence-batch.js';

// File access through @relign/tensor: node:fs in Node.js, a stand-in that rejects in a browser bundle.
const { access } = nodeFs;
const { join } = nodePath;

/** Tensor-name prefix of the head in `model.safetensors`. */
export const HEAD_PREFIX = 'score';

/** Options shared by every way of making a {@link RewardModel}. */
export interface RewardModelOptions {
  /** Encodes text given to {@link RewardModel.score} (and decodes nothing). Needed only for text inputs. */
  tokenizer?: RewardTokenizer;
  /** The reward normaliser, or options for a fresh one (default: `new RewardNormalizer()`). */
  normalizer?: RewardNormalizer | RewardNormalizerOptions;
  /**
   * A sequence longer than the backbone's `n_positions`: `'error'` (default) throws naming the row;
   * `'left'` drops tokens from its start (the response end, which is scored, is kept).
   */
  truncation?: 'error' | 'left';
}

/** Options of {@link RewardModel.create} and {@link RewardModel.fromBackbone}. */
export interface CreateRewardModelOptions extends RewardModelOptions {
  /** Seed of the backbone init (create) and of the head init (both). Default 0. */
  seed?: number | string;
  /** Head with a bias. Default false: PPO-max's bias-free linear head (docs/algorithms.md §2.2). */
  bias?: boolean;
  /** Std of the head's normal init. Default `1/sqrt(3 D)` (ScalarHead's). */
  headStd?: number;
}

/** Options of {@link RewardModel.scoreSequences}. */
export interface ScoreSequencesOptions {
  /** Rows per forward pass. Default 32. */
  batchSize?: number;
  /** Padding side of the batches. Scores do not depend on it (up to float rounding). Default `'right'`. */
  padding?: PaddingSide;
  /** Pad id. Default 0 (masks come from lengths, so any valid id works). */
  padId?: number;
}

/** A reward model; it is also a {@link RewardFunction} (`score`) on token ids, or on text with a tokenizer. */
export class RewardModel implements RewardFunction {
  readonly name = 'rewardModel';
  readonly inputKind = 'tokens' as const;
  readonly backbone: CausalLM;
  readonly head: ScalarHead;
  /** Running reward statistics, saved with the model (docs/algorithms.md §2.3). `score` returns raw scores; see `normalizedReward`. */
  normalizer: RewardNormalizer;
  tokenizer: RewardTokenizer | undefined;
  readonly truncation: 'error' | 'left';
  #disposed = false;

  private constructor(backbone: CausalLM, head: ScalarHead, options: RewardModelOptions) {
    if (head.hiddenSize !== backbone.dims.hiddenSize) {
      throw new Error(
        `RewardModel: the head has hidden size ${head.hiddenSize} but the backbone has n_embd=${backbone.dims.hiddenSize}.`,
      );
    }
    const truncation = options.truncation ?? 'error';
    if (truncation !== 'error' && truncation !== 'left') {
      throw new Error(
        `RewardModel: truncation must be 'error' or 'left', got ${JSON.stringify(truncation)}.`,
      );
    }
    this.backbone = backbone;
    this.head = head;
    this.tokenizer = options.tokenizer;
    this.truncation = truncation;
    this.normalizer =
      options.normalizer instanceof RewardNormalizer
        ? options.normalizer
        : new RewardNormalizer(options.normalizer ?? {});
  }

  /** A new reward model with a freshly initialised backbone (seeded) and head. */
  static create(config: ModelConfigInput, options: CreateRewardModelOptions = {}): RewardModel {
    const seed = options.seed ?? 0;
    return RewardModel.fromBackbone(CausalLM.create(config, seed), options);
  }

  /**
   * A reward model on an existing backbone (e.g. the SFT model, as PPO-max initialises its RM) with a new
   * head. The reward model takes ownership: its `dispose` frees the backbone (pass `lm.clone()` to keep yours).
   */
  static fromBackbone(backbone: CausalLM, options: CreateRewardModelOptions = {}): RewardModel {
    if (!(backbone instanceof CausalLM))
      throw new TypeError('RewardModel.fromBackbone: backbone must be a CausalLM.');
    const head = ScalarHead.create(backbone.dims.hiddenSize, {
      prefix: HEAD_PREFIX,
      bias: options.bias ?? false,
      seed: `${String(options.seed ?? 0)}/reward-head`,
      ...(options.headStd !== undefined ? { std: options.headStd } : {}),
    });
    return new RewardModel(backbone, head, options);
  }

  /**
   * Loads a folder written by {@link save}. A folder without `reward_stats.json` (e.g. converted from
   * elsewhere) gets a fresh normaliser (`options.normalizer`, or the defaults).
   *
   * @throws Error naming the file for a missing/mismatched backbone tensor, a missing `score.weight`, or a
   *   malformed `reward_stats.json`.
   */
  static async fromPretrained(
    dir: string,
    options: Omit<RewardModelOptions, 'normalizer'> & {
      normalizer?: RewardNormalizerOptions;
      trainable?: boolean;
    } = {},
  ): Promise<RewardModel> {
    const trainable = options.trainable ?? true;
    const backbone = await CausalLM.fromPretrained(dir, { strict: false, trainable });
    try {
      const head = await ScalarHead.load(join(dir, WEIGHTS_FILE), { prefix: HEAD_PREFIX, trainable });
      const statsPath = join(dir, REWARD_STATS_FILE);
      let normalizer: RewardNormalizer;
      try {
        await access(statsPath);
        normalizer = await RewardNormalizer.load(statsPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          head.dispose();
          throw err;
        }
        normalizer = new RewardNormalizer(options.normalizer ?? {});
      }
      return new RewardModel(backbone, head, { ...options, normalizer });
    } catch (err) {
      backbone.dispose();
      throw err;
    }
  }

  /** The backbone's configuration. */
  get config(): ModelConfig {
    return this.backbone.config;
  }

  /**
   * Writes the folder described in the module comment (`dir` is created; each file is written atomically).
   */
  async save(dir: string): Promise<void> {
    this.#assertLive('save');
    await this.backbone.save(dir);
    // Rewrite model.safetensors with the head added, so the folder has one weights file (HF's layout).
    const tensors = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.backbone.variables()) {
      tensors.set(name, { dtype: 'float32', shape: v.shape.slice(), data: (await v.data()) as Float32Array });
    }
    for (const [name, t] of await this.head.tensors()) tensors.set(name, t);
    await writeSafetensors(join(dir, WEIGHTS_FILE), tensors, { format: 'pt' });
    await this.normalizer.save(join(dir, REWARD_STATS_FILE));
  }

  /** Every parameter: the backbone's (HF names) and the head's (`score.weight`, `score.bias`). */
  variables(): Map<string, tf.Variable> {
    this.#assertLive('variables');
    return new Map([...this.backbone.variables(), ...this.head.variables()]);
  }

  /** The trainable parameters (what the trainer updates). */
  trainableVariables(): Map<string, tf.Variable> {
    this.#assertLive('trainableVariables');
    return new Map([...this.backbone.trainableVariables(), ...this.head.trainableVariables()]);
  }

  /**
   * Scores of a device batch, differentiable w.r.t. the parameters: the head's value at each row's last
   * real token (from `lastOneHot`, built from explicit lengths).
   *
   * @returns `[B]` float32 (the caller disposes it).
   */
  scoreTensors(batch: SequenceTensors): tf.Tensor1D {
    this.#assertLive('scoreTensors');
    return tf.tidy(() => {
      const { hidden } = this.backbone.forwardHidden(batch.inputIds, { attentionMask: batch.attentionMask });
      return selectLast(this.head.apply(hidden), batch.lastOneHot);
    });
  }

  /**
   * Raw scores of whole token sequences (`prompt ++ response`, EOS included where the response has one),
   * without gradients; no tensors remain. The scores stay on the device until one asynchronous read at the end.
   *
   * @returns `[N]` scores, in input order.
   * @throws Error naming the row for an empty sequence, an id outside the vocabulary, or (with
   *   `truncation: 'error'`) a sequence longer than `n_positions`.
   */
  async scoreSequences(
    sequences: readonly TokenIds[],
    options: ScoreSequencesOptions = {},
  ): Promise<Float32Array> {
    this.#assertLive('scoreSequences');
    const { batchSize = 32, padding = 'right', padId = 0 } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`RewardModel.scoreSequences: batchSize must be an integer >= 1, got ${batchSize}.`);
    }
    const rows = sequences.map((s, i) => this.#fit(s, i));
    if (rows.length === 0) return new Float32Array(0);
    const scores: tf.Tensor1D[] = [];
    try {
      for (let start = 0; start < rows.length; start += batchSize) {
        const host = packSequences(rows.slice(start, start + batchSize), { padId, padding });
        const t = sequenceTensors(host);
        try {
          scores.push(this.scoreTensors(t));
        } finally {
          disposeSequenceTensors(t);
        }
      }
      const all = tf.concat(scores);
      try {
        return (await all.data()) as Float32Array;
      } finally {
        all.dispose();
      }
    } finally {
      tf.dispose(scores);
    }
  }

  /**
   * {@link RewardFunction} interface: raw scores of `prompt ++ response`. Token rows are concatenated as
   * given. Text rows are encoded with the model's tokenizer and get an EOS appended unless
   * `options.endedWithEos[i]` is false (training sequences end with EOS, docs/algorithms.md §1.7).
   */
  async score(prompts: RewardInputs, responses: RewardInputs, options?: ScoreOptions): Promise<Float64Array> {
    this.#assertLive('score');
    const fn = 'RewardModel.score';
    const rows = resolveInputs(prompts, responses, fn);
    checkScoreOptions(options, rows.size, fn);
    if (rows.size === 0) return new Float64Array(0);
    let sequences: number[][];
    if (rows.kind === 'tokens') {
      sequences = rows.prompts.map((p, i) => [...p, ...rows.responses[i]!]);
    } else {
      const tok = this.tokenizer;
      if (tok === undefined) {
        throw new Error(
          `${fn}: text inputs need a tokenizer; create or load the model with { tokenizer } or pass token ids.`,
        );
      }
      sequences = rows.prompts.map((p, i) => {
        const ids = [...tok.encode(p), ...tok.encode(rows.responses[i]!)];
        if (options?.endedWithEos?.[i] !== false) ids.push(tok.eosId);
        return ids;
      });
    }
    return checkScores(await this.scoreSequences(sequences), rows.size, this.name);
  }

  /** Whether {@link dispose} was called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Frees the backbone and the head. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.backbone.dispose();
    this.head.dispose();
  }

  #fit(s: TokenIds, row: number): TokenIds {
    const { maxPositions: maxLen, vocabSize: V } = this.backbone.dims;
    if (s.length === 0)
      throw new Error(`RewardModel: row ${row} is empty (prompt and response have no token).`);
    for (let t = 0; t < s.length; t++) {
      const id = s[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new Error(`RewardModel: row ${row} token ${t} is ${id}, outside the vocabulary [0, ${V}).`);
      }
    }
    if (s.length <= maxLen) return s;
    if (this.truncation === 'left') return s.slice(s.length - maxLen);
    throw new Error(
      `RewardModel: row ${row} has ${s.length} tokens but n_positions=${maxLen}; shorten it, or create the ` +
        "model with { truncation: 'left' } to drop tokens from the start.",
    );
  }

  #assertLive(what: string): void {
    if (this.#disposed) throw new Error(`RewardModel.${what}: the model was disposed.`);
  }
}
