import { describe, expect, it } from 'vitest';
import { checkKlCoef } from './update-context.js';

describe('checkKlCoef', () => {
  it('returns β when it is a finite number >= 0', () => {
    expect(checkKlCoef({ klCoef: 0.05, policyVersion: 0 }, 'p.update')).toBe(0.05);
    expect(checkKlCoef({ klCoef: 0, policyVersion: 0 }, 'p.update')).toBe(0);
  });

  it('rejects a negative, non-finite or missing β naming the method and the field', () => {
    for (const klCoef of [-1, NaN, Infinity, undefined, '0.1']) {
      expect(() => checkKlCoef({ klCoef, policyVersion: 0 } as never, 'p.update')).toThrow(
        /^p\.update: context\.klCoef \(β\) must be a finite number >= 0, got /,
      );
    }
    expect(() => checkKlCoef(undefined as never, 'p.evaluate')).toThrow(/p\.evaluate: context\.klCoef/);
  });
});
