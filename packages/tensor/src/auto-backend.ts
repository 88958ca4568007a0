/**
 * The backend of entry points that train (the Trainer, SFT and pretraining, reward-model and offline DPO
 * training): the best available one ({@link initBackend}) unless the user chose one, and never tfjs's Node
 * banner.
 *
 * Without a choice, tfjs runs on its pure-JS `cpu` backend in Node (~30x slower than wasm for training, see
 * docs) and tfjs-backend-cpu prints "Hi, looks like you are running TensorFlow.js in Node.js. To speed things
 * up dramatically, install our node backend…" on the first tensor it stores. That advice is wrong for relign
 * (tfjs-node is an optional extra; wasm is what relign picks by default), so it is silenced.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { activeBackend, initBackend } from './backend.js';

/**
 * Silences tfjs-backend-cpu's Node banner. It is printed by `MathBackendCPU.write` while the instance's
 * `firstUse` is true and `env().get('IS_NODE')` (tfjs-backend-cpu 4.22, `backend_cpu.ts`). The constructor
 * assigns `this.firstUse = true`, and tfjs makes a new instance whenever it picks its default backend, so an
 * accessor on the prototype that always reads false (and ignores writes) silences that message alone, for
 * every instance. tfjs's global switches that also do (`PROD`, `IS_TEST`) silence every tfjs warning, and
 * `IS_TEST` turns on a leak check around every kernel. Applied when this module loads.
 */
export function silenceNodeBanner(): void {
  const proto = MathBackendCPU.prototype as unknown as object;
  if (!Object.getOwnPropertyDescriptor(proto, 'firstUse')?.get) {
    Object.defineProperty(proto, 'firstUse', { get: () => false, set: () => {}, configurable: true });
  }
  // An instance made before this module loaded holds its own field.
  const cpu = tf.findBackend('cpu') as { firstUse?: unknown } | null;
  if (cpu && Object.getOwnPropertyDescriptor(cpu, 'firstUse')) cpu.firstUse = false;
}

silenceNodeBanner();

/**
 * Whether a backend was chosen: by {@link initBackend} (or `RELIGN_BACKEND` through it), or with
 * `tf.setBackend` of another backend than `cpu`. `cpu` set through tfjs is not a choice, because it is
 * also what tfjs falls back to by itself in Node on the first op: to train on `cpu`, call
 * `initBackend('cpu')` (or set `RELIGN_BACKEND=cpu`).
 */
export function backendChosen(): boolean {
  if (activeBackend() !== undefined) return true;
  // tf.getBackend() reads the engine's backend name without making tfjs pick one.
  const name = tf.getBackend() as string | null | undefined;
  return typeof name === 'string' && name !== 'cpu';
}

let pending: Promise<unknown> | undefined;

/**
 * Picks the best available backend with {@link initBackend} unless one was chosen ({@link backendChosen});
 * tensors made before on tfjs's default `cpu` backend move to the new one when next used.
 *
 * @returns the name of the active tfjs backend.
 */
export async function ensureBackend(): Promise<string> {
  silenceNodeBanner();
  if (!backendChosen()) {
    // One selection for concurrent callers (two trainers started together).
    pending ??= initBackend().finally(() => {
      pending = undefined;
    });
    await pending;
  }
  return tf.getBackend();
}
