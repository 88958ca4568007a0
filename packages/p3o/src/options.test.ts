import { describe, expect, it } from 'vitest';
import { defaultsOf, resolveConfig } from '@relign/core';
import { P3O_DEFAULT_OPTIONS, p3oConfigSchema, resolveP3OOptions } from './index.js';

describe('P3O options', () => {
  it('resolveP3OOptions fills the docs/algorithms.md §1.9 defaults and rejects typos and bad ranges', () => {
    expect(resolveP3OOptions(undefined, 'f')).toEqual({ klCoef: 0.05, clipRange: 0.2, ratioClip: 10 });
    expect(resolveP3OOptions({ clipRange: 0.1 }, 'f')).toEqual({
      klCoef: 0.05,
      clipRange: 0.1,
      ratioClip: 10,
    });
    expect(() => resolveP3OOptions({ cliprange: 0.1 } as never, 'f')).toThrow(
      /f: unknown option `options\.cliprange`/,
    );
    expect(() => resolveP3OOptions({ ratioClip: 0.5 }, 'f')).toThrow(
      /`options\.ratioClip` must be a finite number > 1/,
    );
    expect(() => resolveP3OOptions({ klCoef: Number.POSITIVE_INFINITY }, 'f')).toThrow(
      /f: `options\.klCoef` must be a finite number >= 0 \(the KL coefficient β\), got number Infinity/,
    );
    expect(() => resolveP3OOptions(null as never, 'f')).toThrow(
      /f: `options` must be an object \{ klCoef, clipRange, ratioClip \}, got null/,
    );
  });

  it('the plugin config: the pairwise optimizer settings and ε, c with the loss defaults', () => {
    const d = defaultsOf(p3oConfigSchema);
    expect(d.clipRange).toBe(P3O_DEFAULT_OPTIONS.clipRange);
    expect(d.ratioClip).toBe(P3O_DEFAULT_OPTIONS.ratioClip);
    expect(d).toMatchObject({
      lr: 8e-6,
      epochs: 4,
      pairsPerMinibatch: 4,
      rewardScaling: 'none',
      rewardClip: 0,
    });
    expect(() => resolveConfig(p3oConfigSchema, { ratioClip: 1 }, 'p3o')).toThrow(/ratioClip/);
  });
});
