/**
 * P3O's loss options and their defaults (docs/algorithms.md §1.9), shared by the P3O-V1 and P3O-V2 losses, and
 * the plugin config both plugins declare: the pairwise optimizer settings of `@relign/core` plus ε and c.
 */
import { configSchema, numberField, PAIRWISE_OPTIMIZER_SCHEMA, type InferConfig } from '@relign/core';
import { checkNumber, checkOptions } from '@relign/tensor';

/** P3O loss options (docs/algorithms.md §1.9 defaults: β = 0.05, ε = 0.2, c = 10). */
export interface P3OOptions {
  /** β ≥ 0: weight of the sequence-level KL penalty inside `q` (docs/algorithms.md §1.2). */
  klCoef: number;
  /** ε > 0: the PPO-style update clip (docs/algorithms.md §1.4 on the pair log-ratio, §1.5 on each ratio). */
  clipRange: number;
  /** c > 1: the detached importance weights are clamped to `[1/c, c]` (docs/algorithms.md §1.4, §1.5). */
  ratioClip: number;
}

/** Defaults of the P3O authors' code (docs/algorithms.md §1.9). */
export const P3O_DEFAULT_OPTIONS: Readonly<P3OOptions> = Object.freeze({
  klCoef: 0.05,
  clipRange: 0.2,
  ratioClip: 10,
});

const P3O_OPTION_KEYS = ['klCoef', 'clipRange', 'ratioClip'] as const;

/** Fills in the docs/algorithms.md §1.9 defaults and checks ranges; unknown keys (typos such as `kl_coef`) are errors. */
export function resolveP3OOptions(options: Partial<P3OOptions> | undefined, fn: string): P3OOptions {
  const given = checkOptions(options, P3O_OPTION_KEYS, fn);
  const out = { ...P3O_DEFAULT_OPTIONS };
  for (const key of P3O_OPTION_KEYS) {
    if (given[key] !== undefined) out[key] = given[key] as number;
  }
  const check = (key: keyof P3OOptions, ok: (v: number) => boolean, rule: string): void => {
    checkNumber(out[key], `options.${key}`, fn, ok, rule, { finite: true });
  };
  check('klCoef', (v) => v >= 0, '>= 0 (the KL coefficient β)');
  check('clipRange', (v) => v > 0, '> 0 (the update clip ε)');
  check('ratioClip', (v) => v > 1, '> 1 (importance weights are clamped to [1/c, c])');
  return out;
}

/**
 * The config of the P3O plugins: the shared pairwise settings (`PAIRWISE_OPTIMIZER_SCHEMA` of `@relign/core`)
 * and the loss's ε and c, with the defaults of the authors' code (docs/algorithms.md §1.9; `thwu1/trlx`
 * `examples/hh/p3o_hh.py` and `default_p3o_config`, the "6B" column). P3O-V1 and P3O-V2 declare the same
 * fields and defaults; β (the KL coefficient) is not here: it comes from the Trainer's KL controller.
 */
export const p3oConfigSchema = configSchema({
  ...PAIRWISE_OPTIMIZER_SCHEMA.entries,
  clipRange: numberField({
    default: P3O_DEFAULT_OPTIONS.clipRange,
    min: 0,
    exclusiveMin: true,
    description: 'update clip ε (docs/algorithms.md §1.4/§1.5 cliprange: 0.2)',
  }),
  ratioClip: numberField({
    default: P3O_DEFAULT_OPTIONS.ratioClip,
    min: 1,
    exclusiveMin: true,
    description:
      'importance weights are clamped to [1/c, c] (docs/algorithms.md §1.4/§1.5 cliprange_ratio: 10)',
  }),
});

/** P3O plugin settings, as declared by {@link p3oConfigSchema}. */
export type P3OConfig = InferConfig<typeof p3oConfigSchema>;
