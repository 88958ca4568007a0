/**
 * The RLHF training loop. Drives any optimizer plugin (docs/algorithms.md §4.6b, §1.8): each iteration
 *
 *   take the next prompts → generate `responsesPerPrompt` responses each → score them with the reward
 *   function → reference log-probs → replay buffer → `plugin.update` → KL controller → metrics,
 *
 * with periodic evaluation and checkpoints. Everything a run depends on (policy, plugin state with its
 * optimizer, trainer RNG, replay buffer, KL controller, running reward statistics, prompt position, counters)
 * is checkpointed, so a run interrupted after step k and resumed ends with the same parameters as an
 * uninterrupted one (same backend, same seed).
 */
import * as tf from '@tensorflow/tfjs-core';
import { loraAdapterOf, loraBaseModel, type CausalLM } from '@relign/lm';
import { collateGroups, ReplayBuffer, type RolloutBatch } from '@relign/rollout';
import { rewardFunction, type RewardFunction, type RowInfo } from '@relign/reward-model';
import {
  checkWeights,
  createRng,
  DEFAULT_MAX_WEIGHT_ABS,
  ensureBackend,
  rngFromState,
  type Rng,
  createSha256,
} from '@relign/tensor';
import { collectRollout, type GenerationOptions, type TextDecoder } from './collect.js';
import {
  latestCheckpoint,
  loadPolicyWeights,
  readCheckpoint,
  writeCheckpoint,
  type TrainerCheckpointState,
} from './checkpoint.js';
import { TypedEmitter } from './events.js';
import { AdaptiveKlController, FixedKlController, klControllerFromJSON, type KlController } from './kl.js';
import { MetricsLog, RunningStats, rolloutMetrics } from './metrics.js';
import {
  createInstance,
  isAlgorithmPlugin,
  unwrapPluginModule,
  type AlgorithmInstance,
  type AlgorithmPlugin,
  type AnyAlgorithmPlugin,
  type Metrics,
  type PluginResources,
  type RolloutRequirements,
} from './plugin.js';
import { PromptSampler } from './prompt-sampler.js';
import {
  resolvePrompts,
  type PromptEncoder,
  type PromptRecord,
  type PromptsInput,
  type ResolvedPrompts,
} from './prompts.js';
import { resolvePlugin } from './registry.js';
import { deserializePluginState, disposePluginState, serializePluginState } from './state-io.js';

/** How β (the KL coefficient) is controlled (docs/algorithms.md §4.7). */
export type KlControlOptions =
  | { kind: 'fixed'; value: number }
  | {
      kind: 'adaptive';
      /** β0, default 0.2 (TRL v0.11). */
      initial?: number;
      /** Target `objective/kl` (per-sequence sum), default 6. */
      target?: number;
      /** Horizon in samples, default 10000. */
      horizon?: number;
    };

export type { PromptData, PromptRecord, PromptsInput } from './prompts.js';

/** A per-response reward on text; the Trainer always gives `info.record` (see `TrainerOptions.reward`). */
export type RowReward<R> = (
  prompt: string,
  response: string,
  info: RowInfo<R> & { record: R },
) => number | Promise<number>;

/**
 * `C`: the plugin's config type, inferred from `plugin` (so `pluginConfig` is checked against it). `R`: the
 * prompt records' type, inferred from `prompts` (so the reward function's `info.record` has it).
 */
export interface TrainerOptions<C = Record<string, unknown>, R extends PromptRecord = PromptRecord> {
  /**
   * The policy to train (updated in place). On resume, pass the same starting model as the original run:
   * the checkpoint's weights are loaded into it.
   */
  policy: CausalLM;
  /**
   * The frozen reference (the SFT model). Default: `policy.clone({trainable: false})` made at start; for a
   * LoRA policy (`attachLora`), the policy with its adapters disabled (`loraBaseModel`: no copy of the weights).
   */
  reference?: CausalLM;
  /**
   * Encodes text prompts and decodes tokens for reward functions that work on text (`BpeTokenizer` of
   * @relign/lm).
   */
  tokenizer?: TextDecoder & Partial<PromptEncoder>;
  /**
   * Training prompts: records `{ prompt, ...fields }` (e.g. `{ prompt: '2+3=', answer: '5' }`), texts or token
   * arrays, or `{tokens, texts}`. Texts are encoded with `tokenizer`. Each prompt's record (`{ prompt }` for a
   * bare prompt) goes to the reward function with its responses (`info.record`, `ScoreOptions.records`).
   */
  prompts: PromptsInput<R>;
  /**
   * Scores responses; raw scores go to the plugin (which does its own reward processing). A
   * {@link RewardFunction}, or a per-response function `(prompt, response, info) => number` on text (decoded
   * with `tokenizer`) whose `info.record` is the prompt's record, typed from `prompts`:
   * `reward: (_prompt, response, { record }) => (response.trim() === record.answer ? 1 : 0)`.
   */
  reward: RewardFunction<NoInfer<R>> | RowReward<NoInfer<R>>;
  /** An {@link AlgorithmPlugin}, or a name resolved by the registry (`'p3o-v2'`, `'relign-plugin-foo'`). */
  plugin: AlgorithmPlugin<C> | string;
  /**
   * The plugin's config, typed from `plugin` (`Partial<ConfigOf<typeof plugin>>`: a misspelled key is a
   * compile error) and validated against its schema at run time (unknown keys are rejected).
   */
  pluginConfig?: NoInfer<Partial<C>>;
  /** Sampling settings (responses per prompt come from the plugin's requirements). */
  generation: GenerationOptions;
  /** Prompts per iteration (rows = prompts × responsesPerPrompt). */
  promptsPerIteration: number;
  /** Iterations (rollout + update) of the whole run, counting those done before a resume. */
  iterations: number;
  /**
   * KL control (docs/algorithms.md §4.7): β for every optimizer (PPO-max's per-token penalty, P3O's, DPO's loss β).
   * Default: fixed at the plugin's paper value when it declares one (`requirements().klCoef`, e.g. 0.1 for
   * DPO), else `{kind: 'fixed', value: 0.05}` (P3O's β, docs/algorithms.md §1.9).
   */
  kl?: KlControlOptions;
  /**
   * Replay-buffer capacity in groups (prompts). Default `promptsPerIteration`: on-policy, each update sees
   * exactly its iteration's rollout. Larger: the update also sees the newest older groups.
   */
  bufferCapacity?: number;
  /** Evaluation prompts, in any form `prompts` takes (one response each, fixed sampling seed). */
  evalPrompts?: PromptsInput<R>;
  /**
   * Objects the plugin may need (declared in its `requirements().resources`): a reward model (PPO-max's critic
   * starts as a copy of it, docs/algorithms.md §2.8), SFT examples (PPO-ptx). Handed to `plugin.create` as `context.resources`;
   * a resource the plugin requires but this lacks stops `init()` with an error naming it.
   */
  resources?: PluginResources;
  /** Evaluate every N iterations (requires `evalPrompts`). */
  evalEvery?: number;
  /** Sampling overrides for evaluation (e.g. `{temperature: 0}` for greedy; KL is then not reported). */
  evalGeneration?: Partial<GenerationOptions>;
  /** Where checkpoints go. */
  checkpointDir?: string;
  /** Checkpoint every N iterations (and at the end of `train()`, and on abort). Requires `checkpointDir`. */
  checkpointEvery?: number;
  /** Checkpoints kept (newest first). Default 2. */
  keepCheckpoints?: number;
  /**
   * Resume: `true` continues from `<checkpointDir>/latest.json` when it exists (else starts fresh); a path
   * resumes from that checkpoint directory (`.../step-00000012`).
   */
  resume?: boolean | string;
  /** Run seed (prompt order, sampling, the plugin's randomness). Default 0. */
  seed?: number | string;
  /** Stops `train()` between iterations (a checkpoint is written first when `checkpointDir` is set). */
  signal?: AbortSignal;
  /** Called with each iteration's metrics (after the 'metrics' event). */
  onMetrics?: (metrics: Metrics, step: number) => void;
  /** Metrics as JSON Lines (one object per iteration, eval metrics merged in). */
  metricsPath?: string;
}

/** Events of a {@link Trainer}. */
export interface TrainerEvents extends Record<string, unknown> {
  metrics: { step: number; metrics: Metrics };
  eval: { step: number; metrics: Metrics };
  checkpoint: { step: number; path: string };
  /** The scored rollout of an iteration (host arrays; do not modify). */
  rollout: {
    step: number;
    batch: RolloutBatch;
    rewards: Float64Array;
    refLogprobs?: Float32Array;
    /** Index in the prompt set of each of the iteration's prompts. */
    promptIndices: number[];
  };
  /** Something the user should know (skipped updates, config changes on resume). */
  warning: { step: number; message: string };
}

export interface TrainResult {
  /** Iterations done. */
  step: number;
  stopped: 'completed' | 'aborted';
  /** Metrics of the last iteration run by this call (undefined if none ran). */
  metrics?: Metrics;
  /** The last checkpoint written, if any. */
  checkpoint?: string;
}

function positiveInt(value: unknown, field: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new Error(`Trainer: options.${field} must be an integer >= ${min}, got ${String(value)}.`);
  }
  return value;
}

function makeKlController(o: KlControlOptions | undefined): KlController {
  if (o === undefined) return new FixedKlController(0.05);
  if (o.kind === 'fixed') return new FixedKlController(o.value);
  if (o.kind === 'adaptive') return new AdaptiveKlController(o.initial, o.target, o.horizon);
  throw new Error(
    `Trainer: options.kl.kind must be 'fixed' or 'adaptive', got ${JSON.stringify((o as { kind?: unknown }).kind)}.`,
  );
}

/**
 * A fingerprint of a model's weights: SHA-256 over every variable's name, shape and up to 4096 evenly
 * spaced values (bit patterns). Cheap for large models; any training step changes it. The samples are
 * gathered on the device and read back in one asynchronous read.
 */
export async function weightsFingerprint(model: CausalLM): Promise<string> {
  const vars = [...model.variables()];
  const counts = vars.map(([, v]) => Math.min(v.size, 4096));
  const samples = tf.tidy(() =>
    tf.concat(
      vars.map(([, v], j) => {
        const n = v.size;
        const k = counts[j]!;
        const idx = Int32Array.from({ length: k }, (_, i) => Math.floor((i * n) / k));
        return tf.gather(tf.reshape(v, [-1]), tf.tensor1d(idx, 'int32'));
      }),
    ),
  );
  let all: Float32Array;
  try {
    all = (await samples.data()) as Float32Array;
  } finally {
    samples.dispose();
  }
  const hash = createSha256();
  let offset = 0;
  vars.forEach(([name, v], j) => {
    hash.update(`${name}:${v.shape.join('x')};`);
    const sample = all.subarray(offset, offset + counts[j]!);
    offset += counts[j]!;
    hash.update(new Uint8Array(sample.buffer, sample.byteOffset, sample.byteLength));
  });
  return hash.digest('hex');
}

/**
 * Trains a policy with an optimizer plugin. `await trainer.train()` runs to `iterations` (or until the abort
 * signal); `await trainer.step()` runs one iteration. Call {@link dispose} when done (the policy and a
 * reference you passed are yours; the default reference and the plugin instance are the trainer's).
 */
export class Trainer<
  C = Record<string, unknown>,
  R extends PromptRecord = PromptRecord,
> extends TypedEmitter<TrainerEvents> {
  readonly options: TrainerOptions<C, R>;
  private readonly prompts: ResolvedPrompts;
  private readonly evalPrompts: ResolvedPrompts | undefined;
  private readonly seed: number | string;
  private readonly reward: RewardFunction<R>;
  private initialized: Promise<void> | undefined;
  private busy = false;
  private disposed = false;

  // Set by init().
  private plugin!: AnyAlgorithmPlugin;
  private pluginConfig!: Record<string, unknown>;
  private instance!: AlgorithmInstance;
  private requirements!: RolloutRequirements;
  private reference!: CausalLM;
  private ownsReference = false;
  private referenceFingerprint = '';
  private buffer!: ReplayBuffer;
  private sampler!: PromptSampler;
  private rng!: Rng;
  private kl!: KlController;
  private rewardStats = new RunningStats();
  private metricsLog: MetricsLog | undefined;

  private iteration = 0;
  private version = 0;
  private skippedTotal = 0;
  private lastCheckpoint: string | undefined;
  private lastCheckpointStep = -1;
  /** Largest |w| the policy may hold after an update or in a checkpoint (see {@link weightProblem}). */
  private weightLimit: number | undefined;

  constructor(options: TrainerOptions<C, R>) {
    super();
    if (options === null || typeof options !== 'object')
      throw new Error('Trainer: options must be an object.');
    this.options = options;
    if (!options.policy || typeof options.policy.forward !== 'function') {
      throw new Error('Trainer: options.policy must be a CausalLM (@relign/lm).');
    }
    if (typeof options.reward === 'function') {
      const fn = options.reward as RowReward<R>;
      if (!options.tokenizer) {
        throw new Error(
          'Trainer: options.reward is a function of text, so options.tokenizer is needed to decode the responses ' +
            '(e.g. the BpeTokenizer of @relign/lm); or pass a RewardFunction with inputKind: "tokens".',
        );
      }
      // Every row the Trainer scores carries its prompt's record (scoreBatch is given promptRecords).
      this.reward = rewardFunction<R>((p, r, info) => fn(p, r, info as RowInfo<R> & { record: R }), {
        name: fn.name || 'reward',
      });
    } else if (options.reward && typeof options.reward.score === 'function') {
      this.reward = options.reward;
    } else {
      throw new Error(
        'Trainer: options.reward must be a RewardFunction (e.g. rewardFunction(fn) of @relign/reward-model) or a ' +
          'function (prompt, response, info) => number.',
      );
    }
    if (options.plugin === undefined || options.plugin === null) {
      throw new Error("Trainer: options.plugin is required (an AlgorithmPlugin or a name such as 'p3o-v2').");
    }
    if (!options.generation || typeof options.generation !== 'object') {
      throw new Error('Trainer: options.generation {maxNewTokens, stopTokenIds, temperature?} is required.');
    }
    this.prompts = resolvePrompts(options.prompts, 'prompts', options.tokenizer);
    positiveInt(options.promptsPerIteration, 'promptsPerIteration');
    positiveInt(options.iterations, 'iterations', 0);
    if (options.bufferCapacity !== undefined) positiveInt(options.bufferCapacity, 'bufferCapacity');
    if (options.evalEvery !== undefined) {
      positiveInt(options.evalEvery, 'evalEvery');
      if (!options.evalPrompts) throw new Error('Trainer: options.evalEvery needs options.evalPrompts.');
    }
    this.evalPrompts = options.evalPrompts
      ? resolvePrompts(options.evalPrompts, 'evalPrompts', options.tokenizer)
      : undefined;
    if (options.checkpointEvery !== undefined) {
      positiveInt(options.checkpointEvery, 'checkpointEvery');
      if (!options.checkpointDir)
        throw new Error('Trainer: options.checkpointEvery needs options.checkpointDir.');
    }
    if (options.keepCheckpoints !== undefined) positiveInt(options.keepCheckpoints, 'keepCheckpoints');
    if (options.resume === true && !options.checkpointDir) {
      throw new Error(
        'Trainer: options.resume = true needs options.checkpointDir (or pass the checkpoint path as resume).',
      );
    }
    this.seed = options.seed ?? 0;
    if (typeof this.seed === 'number' ? !Number.isSafeInteger(this.seed) : typeof this.seed !== 'string') {
      throw new Error(`Trainer: options.seed must be a safe integer or a string, got ${String(this.seed)}.`);
    }
    this.kl = makeKlController(options.kl);
  }

  /** Iterations done. */
  get stepsDone(): number {
    return this.iteration;
  }

  /** Policy updates done (the version of the current policy). */
  get policyVersion(): number {
    return this.version;
  }

  /** The current KL coefficient β (the plugin's default applies from {@link init} on when `kl` is unset). */
  get klCoef(): number {
    return this.kl.value;
  }

  /** The plugin instance (after {@link init}). */
  get algorithm(): AlgorithmInstance {
    if (!this.instance) throw new Error('Trainer: not initialised yet; await trainer.init() first.');
    return this.instance;
  }

  /**
   * Resolves the plugin, creates the reference and the plugin instance, and resumes from a checkpoint when
   * asked. Called by `train()`/`step()`; idempotent.
   */
  init(): Promise<void> {
    this.initialized ??= this.doInit();
    return this.initialized;
  }

  private async doInit(): Promise<void> {
    const o = this.options;
    // The best available backend (wasm without native packages) unless the user chose one.
    await ensureBackend();
    // A module namespace (`require('@relign/p3o-v2')` in CommonJS) is taken for its default export.
    this.plugin = typeof o.plugin === 'string' ? await resolvePlugin(o.plugin) : unwrapPluginModule(o.plugin);
    const problem = isAlgorithmPlugin(this.plugin);
    if (problem !== true) throw new Error(`Trainer: options.plugin is not an AlgorithmPlugin: ${problem}.`);
    if (o.reference) {
      this.reference = o.reference;
    } else if (loraAdapterOf(o.policy)) {
      // The base under the adapters is the reference, sharing the policy's frozen weights (TRL with PEFT).
      this.reference = loraBaseModel(o.policy);
    } else {
      this.reference = o.policy.clone({ trainable: false });
      this.ownsReference = true;
    }
    this.referenceFingerprint = await weightsFingerprint(this.reference);
    const made = createInstance(
      this.plugin,
      {
        policy: o.policy,
        reference: this.reference,
        seed: `${String(this.seed)}/plugin`,
        ...(o.resources ? { resources: o.resources } : {}),
      },
      o.pluginConfig,
    );
    this.instance = made.instance;
    this.requirements = made.requirements;
    // The plugin's paper default β applies when the run does not set one (a checkpoint's controller wins).
    if (o.kl === undefined && made.requirements.klCoef !== undefined) {
      this.kl = new FixedKlController(made.requirements.klCoef);
    }
    this.pluginConfig = made.config;
    this.buffer = new ReplayBuffer({
      capacity: o.bufferCapacity ?? o.promptsPerIteration,
      responsesPerPrompt: this.requirements.responsesPerPrompt,
    });
    this.rng = createRng(`${String(this.seed)}/trainer`);
    let position = 0;

    const checkpoint =
      typeof o.resume === 'string'
        ? o.resume
        : o.resume === true
          ? await latestCheckpoint(o.checkpointDir!)
          : undefined;
    if (checkpoint) position = await this.restore(checkpoint);
    this.sampler = new PromptSampler(this.prompts.tokens.length, this.seed, position);
    if (o.metricsPath) {
      this.metricsLog = new MetricsLog(o.metricsPath);
      await this.metricsLog.start(this.iteration);
    }
  }

  /** Loads a checkpoint into the trainer; returns the prompt position. */
  private async restore(path: string): Promise<number> {
    const ckpt = await readCheckpoint(path, { vocabSize: this.options.policy.config.vocab_size });
    const s = ckpt.state;
    if (s.plugin.name !== this.plugin.name) {
      throw new Error(
        `Trainer: checkpoint ${path} was written by plugin '${s.plugin.name}', not '${this.plugin.name}'.`,
      );
    }
    if (s.referenceFingerprint !== this.referenceFingerprint) {
      throw new Error(
        `Trainer: the reference model differs from the one of checkpoint ${path}. On resume pass the run's starting ` +
          "policy (the SFT model) as options.policy — the checkpoint's weights are loaded into it — or the original " +
          'reference as options.reference.',
      );
    }
    if (s.numPrompts !== this.prompts.tokens.length) {
      this.emit('warning', {
        step: s.step,
        message: `the prompt set has ${this.prompts.tokens.length} prompts but the checkpoint's had ${s.numPrompts}; the prompt order differs from the original run.`,
      });
    }
    if (s.seed !== undefined && String(s.seed) !== String(this.seed)) {
      this.emit('warning', {
        step: s.step,
        message: `the seed is ${String(this.seed)} but the checkpoint's run used ${String(s.seed)}; the prompt order follows the new seed, so the resumed run matches neither the original run nor a fresh one.`,
      });
    }
    const changed = Object.keys(this.pluginConfig).filter(
      (k) => JSON.stringify(this.pluginConfig[k]) !== JSON.stringify(s.plugin.config[k]),
    );
    if (changed.length > 0) {
      this.emit('warning', {
        step: s.step,
        message: `plugin config differs from the checkpoint's in: ${changed.join(', ')}.`,
      });
    }
    await loadPolicyWeights(this.options.policy, path);
    const state = deserializePluginState(ckpt.plugin, `${path} plugin state`);
    try {
      this.instance.load(state);
    } finally {
      disposePluginState(state);
    }
    if (ckpt.buffer.responsesPerPrompt !== this.buffer.responsesPerPrompt) {
      throw new Error(
        `Trainer: checkpoint ${path} holds groups of ${ckpt.buffer.responsesPerPrompt} responses; the plugin asks for ${this.buffer.responsesPerPrompt}.`,
      );
    }
    this.buffer = ckpt.buffer;
    this.rng = rngFromState(s.rng);
    this.kl = klControllerFromJSON(s.kl);
    this.rewardStats = RunningStats.fromJSON(s.rewardStats);
    this.iteration = s.step;
    this.version = s.policyVersion;
    this.skippedTotal = s.skippedTotal;
    this.lastCheckpoint = path;
    this.lastCheckpointStep = s.step;
    return s.samplesSeen;
  }

  /** Runs iterations until `options.iterations` or the abort signal. */
  async train(): Promise<TrainResult> {
    await this.init();
    const o = this.options;
    let metrics: Metrics | undefined;
    let stopped: TrainResult['stopped'] = 'completed';
    while (this.iteration < o.iterations) {
      if (o.signal?.aborted) {
        stopped = 'aborted';
        break;
      }
      metrics = await this.step();
    }
    if (o.checkpointDir && this.lastCheckpointStep !== this.iteration) await this.saveCheckpoint();
    const result: TrainResult = { step: this.iteration, stopped };
    if (metrics) result.metrics = metrics;
    if (this.lastCheckpoint) result.checkpoint = this.lastCheckpoint;
    return result;
  }

  /** One iteration: rollout, update, metrics (and evaluation / checkpoint when due). */
  async step(): Promise<Metrics> {
    await this.init();
    if (this.disposed) throw new Error('Trainer: disposed.');
    if (this.busy) throw new Error('Trainer: step() called while another step is running; await it first.');
    this.busy = true;
    try {
      return await this.runStep();
    } finally {
      this.busy = false;
    }
  }

  private async runStep(): Promise<Metrics> {
    const o = this.options;
    const G = this.requirements.responsesPerPrompt;
    const step = this.iteration + 1;

    // Rollout (no grad): prompts → responses → scores → reference log-probs.
    const t0 = performance.now();
    const promptIndices = this.sampler.next(o.promptsPerIteration);
    const prompts = promptIndices.map((i) => this.prompts.tokens[i]!);
    const texts = this.prompts.texts ? promptIndices.map((i) => this.prompts.texts![i]!) : undefined;
    const rollout = await collectRollout({
      policy: o.policy,
      reference: this.reference,
      prompts,
      ...(texts ? { promptTexts: texts } : {}),
      promptRecords: promptIndices.map((i) => this.prompts.records[i]!),
      reward: this.reward,
      ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
      generation: o.generation,
      responsesPerPrompt: G,
      seed: this.rng.nextUint32(),
      policyVersion: this.version,
    });
    const { batch, rewards, refLogprobs } = rollout;
    const t1 = performance.now();
    this.emit('rollout', { step, batch, rewards, ...(refLogprobs ? { refLogprobs } : {}), promptIndices });

    // Buffer → update.
    this.buffer.add(batch, refLogprobs ? { rewards, refLogprobs } : { rewards });
    const minibatch = collateGroups(this.buffer.groups());
    const klCoef = this.kl.value;
    if (this.weightLimit === undefined) await this.weightProblem(); // bound from the weights before any update
    const pluginMetrics = await this.instance.update(minibatch, { klCoef, policyVersion: this.version });
    const t2 = performance.now();
    if (pluginMetrics === null || typeof pluginMetrics !== 'object') {
      throw new Error(
        `Trainer: plugin '${this.plugin.name}' update() returned ${String(pluginMetrics)}; it must return metrics.`,
      );
    }
    this.version += 1;
    this.iteration = step;
    const bad = await this.weightProblem();
    if (bad) {
      throw new Error(
        `Trainer: after update ${step}, ${bad}: plugin '${this.plugin.name}' wrote them (it must skip a step ` +
          `whose loss or gradient is not finite or whose update is beyond the guard's bounds: AdamW.guardedStep). ` +
          `Training stopped; no checkpoint holds these weights${this.lastCheckpoint ? ` (last good: ${this.lastCheckpoint})` : ''}.`,
      );
    }

    // KL control after the iteration, fed with the shared measurement (docs/algorithms.md §4.6b, §4.7).
    const base = rolloutMetrics(batch, rewards, refLogprobs);
    const kl = base['objective/kl'];
    if (kl !== undefined) this.kl.update(kl, batch.batchSize);
    this.rewardStats.push(rewards);
    const skipped = pluginMetrics['train/skipped_steps'] ?? 0;
    if (skipped > 0) {
      this.skippedTotal += skipped;
      this.emit('warning', {
        step,
        message:
          `plugin '${this.plugin.name}' skipped ${skipped} optimizer step(s): a non-finite loss or gradient, or an ` +
          `update beyond the guard's bounds (AdamW maxUpdateNorm / maxWeightAbs; is the learning rate too high?).`,
      });
    }
    let responseTokens = 0;
    for (const l of batch.responseLengths) responseTokens += l;
    const rolloutS = (t1 - t0) / 1000;
    const updateS = (t2 - t1) / 1000;
    const metrics: Metrics = {
      ...pluginMetrics,
      ...base,
      'reward/running_mean': this.rewardStats.mean,
      'reward/running_std': this.rewardStats.std,
      'objective/kl_coef': klCoef,
      'time/rollout_s': rolloutS,
      'time/update_s': updateS,
      'throughput/tokens_per_s': responseTokens / Math.max(rolloutS + updateS, 1e-9),
      'train/step': step,
      'train/skipped_steps_total': this.skippedTotal,
    };
    if (kl !== undefined) {
      metrics['objective/non_score_reward'] = -klCoef * kl;
      metrics['objective/rlhf_reward'] = base['reward/mean']! - klCoef * kl;
    }

    if (o.evalEvery && step % o.evalEvery === 0) Object.assign(metrics, await this.evaluate());
    this.emit('metrics', { step, metrics });
    o.onMetrics?.(metrics, step);
    await this.metricsLog?.write(metrics);
    if (o.checkpointEvery && step % o.checkpointEvery === 0) await this.saveCheckpoint();
    return metrics;
  }

  /**
   * Evaluates the current policy on the evaluation prompts: one response each, sampled with a fixed seed
   * (so successive evaluations differ only by the policy). Emits 'eval'.
   *
   * @returns `eval/reward/mean`, `eval/reward/std`, `eval/objective/kl` (when τ > 0), `eval/objective/entropy`,
   *   `eval/response/length_mean`, `eval/response/eos_rate`.
   */
  async evaluate(): Promise<Metrics> {
    await this.init();
    if (!this.evalPrompts) throw new Error('Trainer.evaluate: options.evalPrompts is not set.');
    const o = this.options;
    const generation = { ...o.generation, ...o.evalGeneration };
    const greedy = generation.temperature === 0;
    const chunk = o.promptsPerIteration;
    const all = { batches: [] as RolloutBatch[], rewards: [] as Float64Array[], ref: [] as Float32Array[] };
    const { tokens, texts, records } = this.evalPrompts;
    for (let i = 0; i < tokens.length; i += chunk) {
      const r = await collectRollout({
        policy: o.policy,
        ...(greedy ? {} : { reference: this.reference }),
        prompts: tokens.slice(i, i + chunk),
        ...(texts ? { promptTexts: texts.slice(i, i + chunk) } : {}),
        promptRecords: records.slice(i, i + chunk),
        reward: this.reward,
        ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
        generation,
        responsesPerPrompt: 1,
        seed: `${String(this.seed)}/eval/${i}`,
        policyVersion: this.version,
      });
      all.batches.push(r.batch);
      all.rewards.push(r.rewards);
      if (r.refLogprobs) all.ref.push(r.refLogprobs);
    }
    // Weighted merge of the chunks' statistics (means by rows; std from pooled second moments).
    let n = 0;
    const acc: Record<string, number> = {};
    let sumSq = 0;
    all.batches.forEach((b, k) => {
      const m = rolloutMetrics(b, all.rewards[k]!, all.ref[k], 'eval/');
      for (const [key, v] of Object.entries(m)) acc[key] = (acc[key] ?? 0) + v * b.batchSize;
      for (const r of all.rewards[k]!) sumSq += r * r;
      n += b.batchSize;
    });
    const metrics: Metrics = {};
    for (const [key, v] of Object.entries(acc)) metrics[key] = v / n;
    const mean = metrics['eval/reward/mean']!;
    metrics['eval/reward/std'] = Math.sqrt(Math.max(sumSq / n - mean * mean, 0));
    this.emit('eval', { step: this.iteration, metrics });
    return metrics;
  }

  /**
   * Writes a checkpoint of the current state (see `checkpoint.ts` for the layout). Refuses to write
   * non-finite or exploded policy weights ({@link weightProblem}).
   *
   * @returns the checkpoint directory.
   */
  async saveCheckpoint(): Promise<string> {
    await this.init();
    const dir = this.options.checkpointDir;
    if (!dir) throw new Error('Trainer.saveCheckpoint: options.checkpointDir is not set.');
    const bad = await this.weightProblem();
    if (bad) {
      throw new Error(
        `Trainer.saveCheckpoint: ${bad}; refusing to write them to a checkpoint` +
          `${this.lastCheckpoint ? ` (the last good one is ${this.lastCheckpoint})` : ''}.`,
      );
    }
    const pluginState = this.instance.state();
    let plugin;
    try {
      plugin = await serializePluginState(pluginState, this.plugin.name);
    } finally {
      disposePluginState(pluginState);
    }
    const state: TrainerCheckpointState = {
      format: 'relign-trainer-state',
      version: 1,
      step: this.iteration,
      policyVersion: this.version,
      samplesSeen: this.sampler.samplesSeen,
      numPrompts: this.prompts.tokens.length,
      seed: this.seed,
      rng: this.rng.state(),
      kl: this.kl.toJSON(),
      plugin: { name: this.plugin.name, config: this.pluginConfig },
      rewardStats: this.rewardStats.toJSON(),
      skippedTotal: this.skippedTotal,
      referenceFingerprint: this.referenceFingerprint,
    };
    const path = await writeCheckpoint(
      dir,
      { state, policy: this.options.policy, plugin, buffer: this.buffer },
      this.options.keepCheckpoints ?? 2,
    );
    this.lastCheckpoint = path;
    this.lastCheckpointStep = this.iteration;
    this.emit('checkpoint', { step: this.iteration, path });
    return path;
  }

  /**
   * What is wrong with the policy's weights, or undefined: a weight that is not finite, or one beyond the
   * bound, `DEFAULT_MAX_WEIGHT_ABS` of `@relign/tensor` (the update guard's) or the largest |w| of the
   * policy as first checked (before the first update), whichever is larger. Reductions on the device, one read.
   */
  private async weightProblem(): Promise<string | undefined> {
    // With an adapter (LoRA) its weights are the ones that train, so they are checked too.
    const policy = this.options.policy;
    const vars = [...new Map([...policy.variables(), ...policy.trainableVariables()])];
    if (this.weightLimit === undefined) {
      const initial = (await checkWeights(vars, Infinity)).maxAbs;
      this.weightLimit = Number.isFinite(initial)
        ? Math.max(DEFAULT_MAX_WEIGHT_ABS, initial)
        : DEFAULT_MAX_WEIGHT_ABS;
    }
    const c = await checkWeights(vars, this.weightLimit);
    if (c.ok) return undefined;
    return c.problem === 'non-finite'
      ? `policy parameter '${c.firstBad}' is not finite (NaN/Inf weights)`
      : `policy parameter '${c.firstBad}' has |w| up to ${c.maxAbs.toExponential(2)}, beyond the bound ` +
          `${this.weightLimit.toExponential(2)} (exploded weights)`;
  }

  /** Frees the plugin instance and the default reference (not the policy, nor a reference you passed). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.instance?.dispose();
    if (this.ownsReference) this.reference?.dispose();
  }
}
