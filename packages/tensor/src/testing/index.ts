/**
 * Test utilities for relign packages (and third-party plugins): run a test body on each backend, and
 * assert that repeated calls leave `tf.memory().numTensors` flat.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../backend.js';

/** Backends every package's tests run on: both install everywhere (no native or GPU code). */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const satisfies readonly BackendName[];

/** Activates `name` (registering relign's kernels on wasm) for the tests that follow. */
export async function useBackend(name: BackendName): Promise<void> {
  await initBackend(name);
}

export interface NoLeakOptions {
  /** Calls made before counting, so caches (e.g. lazily created constants) settle. Default 1. */
  warmup?: number;
  /** Calls whose tensor balance is checked. Default 3. */
  iterations?: number;
  /** What the error message calls the code under test. */
  label?: string;
}

/**
 * Calls `fn` `warmup` times, then `iterations` more times, and throws if `tf.memory().numTensors` grew
 * across the counted calls. Values `fn` returns are disposed (tensors, arrays or records of tensors), so
 * a function that returns its result is not counted as leaking it.
 */
export async function assertNoLeaks(
  fn: () => unknown | Promise<unknown>,
  { warmup = 1, iterations = 3, label = 'function' }: NoLeakOptions = {},
): Promise<void> {
  for (let i = 0; i < warmup; i++) disposeResult(await fn());
  const before = tf.memory().numTensors;
  const counts: number[] = [];
  for (let i = 0; i < iterations; i++) {
    disposeResult(await fn());
    counts.push(tf.memory().numTensors);
  }
  const after = counts[counts.length - 1] ?? before;
  if (after !== before) {
    throw new Error(
      `${label} leaks tensors: tf.memory().numTensors went ${before} -> ${counts.join(' -> ')} over ` +
        `${iterations} calls. Wrap intermediate work in tf.tidy() and dispose what you keep.`,
    );
  }
}

function disposeResult(value: unknown): void {
  if (value instanceof tf.Tensor) {
    value.dispose();
  } else if (Array.isArray(value)) {
    value.forEach(disposeResult);
  } else if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    Object.values(value as Record<string, unknown>).forEach(disposeResult);
  }
}
