/** Helpers shared by the wasm kernel tests: seeded data, running a function on a given backend. */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../backend.js';

/** Seeded normal data, made on cpu, as a plain array (to build identical tensors on each backend). */
export async function seeded(shape: number[], seed: number): Promise<Float32Array> {
  const prev = tf.getBackend();
  await tf.setBackend('cpu');
  const t = tf.randomNormal(shape, 0, 1, 'float32', seed);
  const data = t.dataSync() as Float32Array;
  t.dispose();
  if (prev && prev !== 'cpu') await tf.setBackend(prev);
  return Float32Array.from(data);
}

/** Activates `name` (wasm through initBackend, so relign's kernels are registered). */
export async function activate(name: 'cpu' | 'wasm'): Promise<void> {
  if (name === 'wasm') await initBackend('wasm');
  else await tf.setBackend('cpu');
}

/** Runs `fn` on backend `name`, returning the values of the tensors it returns. */
export async function on<T extends tf.Tensor | tf.Tensor[]>(
  name: 'cpu' | 'wasm',
  fn: () => T,
): Promise<T extends tf.Tensor[] ? Float32Array[] : Float32Array> {
  await activate(name);
  const out = tf.tidy(fn);
  const list = Array.isArray(out) ? out : [out];
  const values = list.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(list);
  return (Array.isArray(out) ? values : values[0]) as T extends tf.Tensor[] ? Float32Array[] : Float32Array;
}

/** max|a - b| / max(1, max|b|). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!Number.isFinite(d)) return Infinity; // NaN or an infinity where the other is not
    if (d > diff) diff = d;
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
