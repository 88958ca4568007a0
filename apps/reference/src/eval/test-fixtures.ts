/** Test-only fixtures of the evaluation tests (not exported from the package). */
import type { EvalResult } from './types.js';

/** A small EvalResult with the given frontier coordinates (std 0.1 everywhere). */
export function fakeResult(
  name: string,
  algo: string,
  step: number,
  kl: number,
  proxy: number,
  gold = proxy / 2,
): EvalResult {
  const ms = (mean: number) => ({ mean, std: 0.1 });
  return {
    name,
    algo,
    step,
    n: 2,
    gold: ms(gold),
    judge: ms(gold / 2),
    proxy: ms(proxy),
    klToSft: ms(kl),
    length: { mean: 5 },
    eosRate: 1,
    distinct1: 0.5,
    distinct2: 0.8,
    repetition: 0,
    winRates: { vsSft: { proxy: 0.5, judge: 0.5 } },
    seconds: 1,
  };
}
