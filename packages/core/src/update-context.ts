/**
 * Checks of the {@link UpdateContext} the Trainer hands `update` and `evaluate`, shared by every plugin so
 * that each rejects a bad β with the same message.
 */
import type { UpdateContext } from './plugin.js';

/**
 * The KL coefficient β of `context` (`context.klCoef`), checked: a finite number ≥ 0.
 *
 * @param fn the calling method, for the message (e.g. `'ppo-max.update'`).
 * @throws Error naming `context.klCoef` and the value received.
 */
export function checkKlCoef(context: UpdateContext, fn: string): number {
  const beta = (context as Partial<UpdateContext> | undefined)?.klCoef;
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta < 0) {
    throw new Error(`${fn}: context.klCoef (β) must be a finite number >= 0, got ${String(beta)}.`);
  }
  return beta;
}
