// No useBackend here: this file checks what a new user gets who never chooses a backend (vitest runs each test
// file in its own process, so tfjs starts with no backend set).
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM } from '@relign/lm';
import { backendChosen } from '@relign/tensor';
import { CONFORMANCE_DEFAULTS, countLowIdsReward, reinforcePlugin } from './testing/index.js';
import { Trainer } from './trainer.js';

const BANNER = /looks like you are running TensorFlow\.js in Node/;
const printed: string[] = [];
const spies = (['warn', 'log', 'info', 'error'] as const).map((level) =>
  vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
    printed.push(args.map(String).join(' '));
  }),
);
afterAll(() => spies.forEach((s) => s.mockRestore()));

describe('Trainer without a chosen backend', () => {
  it("picks the best available one (wasm here) and tfjs prints no 'running TensorFlow.js in Node' banner", async () => {
    delete process.env.RELIGN_BACKEND;
    expect(backendChosen()).toBe(false);
    // The model is made before the Trainer, on tfjs's own default (the pure-JS cpu backend in Node).
    const policy = CausalLM.create(CONFORMANCE_DEFAULTS.model, 7);
    expect(tf.getBackend()).toBe('cpu');
    const trainer = new Trainer({
      policy,
      prompts: [[1, 2], [3]],
      reward: countLowIdsReward(),
      plugin: reinforcePlugin,
      generation: { maxNewTokens: 3, stopTokenIds: [0] },
      promptsPerIteration: 2,
      iterations: 1,
    });
    try {
      const m = await trainer.step();
      expect(Number.isFinite(m['reward/mean'])).toBe(true);
      expect(tf.getBackend()).toBe('wasm');
      expect(backendChosen()).toBe(true);
    } finally {
      trainer.dispose();
      policy.dispose();
    }
    expect(printed.filter((line) => BANNER.test(line))).toEqual([]);
  });
});
