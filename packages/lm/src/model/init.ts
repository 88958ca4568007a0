/**
 * Seeded parameter initialisation. Values are drawn in JS with @relign/tensor's seeded Rng (not with
 * tf.randomNormal) so that the same seed gives bit-identical weights on every backend and platform.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, type Rng } from '@relign/tensor';

export { createRng, type Rng };

/** Fills `out` with N(0, std^2) draws from `rng`, in index order. Returns `out`. */
export function fillNormal(rng: Rng, out: Float32Array, std: number): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = rng.normal(0, std);
  return out;
}

/**
 * A variable-name scope `${base}_${n}` that no registered tfjs variable uses yet. tfjs variable names are
 * global to the engine, and a module-level counter alone is not enough: two copies of this module (ESM and
 * CJS builds, or two installed versions) would both start at 0 and collide.
 *
 * @param probe a name relative to the scope that every object of this kind registers (checked for use).
 */
export function uniqueVariableScope(base: string, probe: string): string {
  const registered = tf.engine().registeredVariables;
  let n = scopeCounter++;
  while (registered[`${base}_${n}/${probe}`] !== undefined) n = scopeCounter++;
  return `${base}_${n}`;
}

let scopeCounter = 0;
