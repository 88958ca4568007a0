// No useBackend here: vitest runs each file in its own process, so tfjs starts with no backend chosen.
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend, initBackend } from './backend.js';
import { backendChosen, ensureBackend } from './auto-backend.js';

const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
afterAll(() => warn.mockRestore());

describe('ensureBackend', () => {
  it("tfjs's cpu backend prints no Node banner; ensureBackend then picks wasm and keeps a user's choice", async () => {
    delete process.env.RELIGN_BACKEND;
    expect(backendChosen()).toBe(false);
    // tfjs falls back to its pure-JS cpu backend on the first op; its first tensor used to print the banner.
    const x = tf.add(tf.tensor1d([1, 2]), 1);
    expect(tf.getBackend()).toBe('cpu');
    expect(warn).not.toHaveBeenCalled();
    // That fallback is not a choice: the best available backend is picked, and existing tensors follow.
    await expect(ensureBackend()).resolves.toBe('wasm');
    expect(activeBackend()?.reason).toBe('auto');
    expect(Array.from(await tf.mul(x, 2).data())).toEqual([4, 6]);
    // A choice made with initBackend (here cpu) is kept.
    await initBackend('cpu');
    await expect(ensureBackend()).resolves.toBe('cpu');
    expect(backendChosen()).toBe(true);
    expect(warn).not.toHaveBeenCalled();
    tf.dispose(x);
  });
});
