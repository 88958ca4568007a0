/**
 * The `relign` pipeline config: one nested object (YAML or JSON), every field documented with its default
 * and range, declared once with @relign/core's field builders (valibot schemas): the same declaration gives
 * validation (errors name the dotted key), the config's type ({@link RelignConfig}), flag parsing
 * (`--sft.steps 100`) and the config reference in the README.
 *
 * Plugin settings live under `algos.<name>` and are validated against the plugin's own schema
 * (`resolvePluginConfig` of @relign/core), not here.
 */
import {
  booleanField,
  configSchema,
  enumField,
  integerField,
  namedSectionsField,
  numberField,
  numberListField,
  sectionField,
  stringField,
  stringListField,
  type ConfigField,
  type InferConfig,
} from '@relign/core';

/** The first-party optimizers, in report order. */
export const FIRST_PARTY_ALGOS = ['ppo-max', 'dpo', 'p3o-v1', 'p3o-v2', 'grpo', 'rloo'] as const;

/** The tasks of `relign run --task`: the reviews (default) and a checkable-reward arithmetic task. */
export const TASKS = ['reviews', 'arithmetic'] as const;

const int = (def: number, min: number, description: string, max?: number): ConfigField<number> =>
  integerField({ default: def, min, max, description });
const pos = (def: number, description: string, max?: number): ConfigField<number> =>
  numberField({ default: def, min: 0, exclusiveMin: true, max, description });

/**
 * The schema. Defaults are the `demo` preset's values where a preset does not say otherwise (see
 * `presets.ts`); `algos` is free-form here (checked against each plugin's schema).
 */
export const CONFIG_SCHEMA = configSchema({
  preset: enumField({
    default: 'demo',
    values: ['demo', 'tiny', 'gpu'],
    description:
      'the preset the config starts from (demo: CPU minutes; tiny: CI seconds; gpu: a larger model)',
  }),
  runDir: stringField({ default: 'runs/demo', description: 'the run directory (layout in the README)' }),
  task: enumField({
    default: 'reviews',
    values: [...TASKS],
    description:
      "the task: 'reviews' (make the model write positive reviews; a learned reward model) or 'arithmetic' " +
      '(answer "a+b=" problems; the checkable reward, accuracy on held-out problems as the gold metric)',
  }),
  seed: int(0, 0, 'seed of every stage (data splits, initialisation, sampling, labels, training)'),
  backend: enumField({
    default: 'auto',
    values: ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'],
    description:
      "tfjs backend; 'auto' = RELIGN_BACKEND if set, else the best installed (see `relign doctor`)",
  }),
  model: sectionField({
    base: stringField({
      default: 'default',
      description:
        "starting model: 'default' (the base model of @relign/base-model), 'scratch' (a fresh model of " +
        "model.scratch's shape and a BPE tokenizer trained on the reviews), 'pretrain' (the run's own pretrain " +
        'stage), a model folder (gpt2/llama/qwen2/qwen3 config.json, safetensors, tokenizer.json or vocab.json + ' +
        'merges.txt) or a Hugging Face Hub id such as HuggingFaceTB/SmolLM2-135M-Instruct (cached; HF_TOKEN, HF_HUB_OFFLINE)',
    }),
    revision: stringField({
      default: 'main',
      description: 'branch, tag or commit of a Hub model.base (ignored for folders)',
    }),
    scratch: sectionField({
      vocabSize: int(512, 260, "BPE vocabulary of a 'scratch' model (256 bytes + merges + <|endoftext|>)"),
      nLayer: int(2, 0, "transformer blocks of a 'scratch' model"),
      nEmbd: int(64, 1, "hidden width of a 'scratch' model (divisible by nHead)"),
      nHead: int(2, 1, "attention heads of a 'scratch' model"),
      nPositions: int(64, 8, "context length of a 'scratch' model"),
    }),
  }),
  lora: sectionField({
    enabled: booleanField({
      default: false,
      description:
        'train the policy through LoRA adapters (sft and train stages); saved policies are merged weights plus the PEFT adapter in adapter/',
    }),
    r: int(8, 1, 'LoRA rank'),
    alpha: pos(16, 'LoRA alpha: the update is (alpha / r) B A x'),
    dropout: numberField({ default: 0, min: 0, max: 0.99, description: "dropout on the adapters' input" }),
    targetModules: stringListField({
      default: [],
      description:
        "module names that get adapters (e.g. q_proj,v_proj); empty: the architecture's default (attention and MLP projections)",
    }),
  }),
  data: sectionField({
    heldOutFraction: pos(
      0.1,
      'fraction of review sentences held out (their first words are the task prompts)',
      0.9,
    ),
    promptWordsMin: int(2, 1, 'fewest words of a sentence used as its prompt'),
    promptWordsMax: int(4, 1, 'most words of a sentence used as its prompt'),
    evalPrompts: int(
      128,
      1,
      'held-out prompts used for evaluation (the other held-out prompts train the policy)',
    ),
  }),
  arithmetic: sectionField({
    maxOperand: int(
      19,
      1,
      'task arithmetic: operands a, b of "a+b=" range over 0..maxOperand (data.evalPrompts of the problems are held out)',
      999,
    ),
    formatReward: numberField({
      default: 0,
      min: 0,
      max: 1,
      description:
        'task arithmetic: reward added for a well-formed answer (digits only), right or wrong; the right answer earns 1',
    }),
  }),
  pretrain: sectionField({
    steps: int(3000, 1, 'pretraining steps (model.base: pretrain)'),
    batchSize: int(8, 1, 'sequences of nPositions tokens per pretraining step'),
    lr: pos(3e-3, 'peak pretraining learning rate'),
    warmupSteps: int(100, 0, 'pretraining warm-up steps'),
    vocabSize: int(1024, 260, 'BPE vocabulary trained by the pretrain stage'),
    bpeMinFrequency: int(
      2,
      1,
      "fewest occurrences of a pair the pretrain stage's BPE trainer merges (1 lets the corpus reach GPT-2's 50257 tokens)",
    ),
    nLayer: int(4, 0, 'transformer blocks of the pretrained model'),
    nEmbd: int(128, 1, 'hidden width of the pretrained model'),
    nHead: int(4, 1, 'attention heads of the pretrained model'),
    nPositions: int(128, 8, 'context length of the pretrained model'),
    evalEvery: int(500, 1, 'held-out evaluation interval of pretraining (steps)'),
    evalBlocks: int(
      128,
      1,
      'held-out blocks scored by the periodic pretraining evaluation (a seeded subset)',
    ),
    heldOutBlocks: int(
      0,
      0,
      'held-out blocks scored by the final pretraining evaluation and its unigram baseline (a seeded subset; 0: all)',
    ),
    samples: int(6, 0, 'samples written after pretraining (prompts "", "The", "It was a", ...)', 6),
    sampleTokens: int(48, 1, 'tokens per pretraining sample'),
  }),
  sft: sectionField({
    steps: int(200, 1, 'SFT steps on review sentences (prompt = first words, completion = the rest)'),
    batchSize: int(16, 1, 'examples per SFT step'),
    lr: pos(1e-3, 'peak SFT learning rate (warm-up + cosine)'),
    warmupSteps: int(10, 0, 'SFT warm-up steps'),
    evalFraction: numberField({
      default: 0.05,
      min: 0,
      max: 1,
      exclusiveMax: true,
      description: 'fraction of SFT pairs held out for its loss',
    }),
    evalEvery: int(50, 1, 'SFT held-out evaluation interval (steps)'),
    checkpointEvery: int(50, 1, 'SFT checkpoint interval (steps; also on Ctrl-C and at the end)'),
  }),
  label: sectionField({
    prompts: int(
      2600,
      2,
      'prompts (first words of training sentences) whose two SFT samples make a preference pair',
    ),
    maxNewTokens: int(24, 1, 'tokens per sampled response'),
    temperature: pos(1, 'sampling temperature of the two responses'),
    btTemperature: numberField({
      default: 0.1,
      min: 0,
      description:
        'Bradley-Terry temperature of the "human" (VADER compound): P(A > B) = sigmoid((s_A - s_B)/tau); 0 = deterministic',
    }),
    minGap: numberField({
      default: 0.05,
      min: 0,
      description:
        'the "human" abstains when the two responses\' VADER scores differ by less than this (mostly two neutral responses, whose label would be a coin flip)',
    }),
  }),
  reward: sectionField({
    steps: int(240, 1, 'reward-model steps (Bradley-Terry loss)'),
    batchSize: int(16, 1, 'pairs per reward-model step'),
    lr: pos(2e-4, 'peak reward-model learning rate'),
    warmupSteps: int(10, 0, 'reward-model warm-up steps'),
    evalFraction: numberField({
      default: 0.1,
      min: 0,
      max: 1,
      exclusiveMax: true,
      description: 'fraction of pairs held out for the preference accuracy',
    }),
    checkpointEvery: int(60, 1, 'reward-model checkpoint interval (steps)'),
  }),
  train: sectionField({
    algos: stringListField({
      default: [...FIRST_PARTY_ALGOS],
      minItems: 1,
      description:
        'optimizers run by `relign run` (first-party: ppo-max, dpo, p3o-v1, p3o-v2, grpo, rloo; or any installed plugin)',
    }),
    iterations: int(60, 1, 'RL iterations (rollout + update) per optimizer'),
    promptsPerIteration: int(16, 1, 'prompts per iteration (pairwise optimizers sample two responses each)'),
    kl: enumField({
      default: 'fixed',
      values: ['fixed', 'adaptive'],
      description: 'KL controller (docs/algorithms.md §4.7)',
    }),
    klCoef: numberField({
      default: 0.05,
      min: 0,
      description: 'KL coefficient beta (initial value when adaptive); for dpo it is also its beta',
    }),
    klTarget: pos(6, 'target sequence KL of the adaptive controller'),
    maxNewTokens: int(24, 1, 'tokens per RL response'),
    temperature: pos(1, 'RL sampling temperature (top-k/top-p stay off, docs/algorithms.md §4.2)'),
    evalEvery: int(10, 1, 'save a policy snapshot every N iterations for the frontier (evaluated by `eval`)'),
    checkpointEvery: int(15, 1, 'trainer checkpoint interval (iterations; also on Ctrl-C and at the end)'),
    parallel: stringField({
      default: 'auto',
      description:
        "train stages run at once, each in its own process (results identical to one after another): 'auto' " +
        '= min(optimizers, RELIGN_THREADS or the cores, what free memory allows) on the wasm and cpu backends, ' +
        '1 on a GPU backend; or a whole number (1: one after another, in-process). Each process gets ' +
        'RELIGN_THREADS = max(1, floor(RELIGN_THREADS or cores / at once))',
    }),
  }),
  eval: sectionField({
    maxNewTokens: int(24, 1, 'tokens per evaluation response'),
    temperature: pos(1, 'evaluation sampling temperature (KL to SFT is measured on these samples)'),
    checkpoints: booleanField({
      default: true,
      description: 'also evaluate the policy snapshots (frontier points)',
    }),
    parallel: stringField({
      default: 'auto',
      description:
        "policies evaluated at once, each share in its own process (after the SFT model; results identical): 'auto' " +
        'or a whole number, as train.parallel',
    }),
  }),
  frontier: sectionField({
    klCoefs: numberListField({
      default: [],
      min: 0,
      description:
        'extra KL coefficients for `relign frontier` (one extra run per optimizer, coefficient and seed)',
    }),
    seeds: numberListField({ default: [], min: 0, description: 'extra seeds for `relign frontier`' }),
  }),
  report: sectionField({
    title: stringField({
      default: 'relign: make the model write positive reviews',
      description: 'title of the HTML report',
    }),
  }),
  algos: namedSectionsField({
    description: "plugin settings by name (algos.<name>.<key>), checked against each plugin's schema",
  }),
});

/** The resolved config (every field present), as {@link CONFIG_SCHEMA} declares it. */
export type RelignConfig = InferConfig<typeof CONFIG_SCHEMA>;
