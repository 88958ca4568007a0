/**
 * One training run of the page: @relign/core's Trainer driven iteration by iteration, so that it can be
 * paused between iterations and its metrics drawn as they come.
 */
import { Trainer } from '@relign/core';
import type { BpeTokenizer, CausalLM } from '@relign/lm';
import { batchRewardFunction, rewardFunction, type RewardFunction } from '@relign/reward-model';
import { generate } from '@relign/rollout';
import type { Algorithm } from './algorithms.js';
import { autoReward, preferenceRewards, type AskPreference, type AutoRewardKind } from './rewards.js';

/** Prompts to train on: openings of short reviews and sentences, like the base model's training text. */
export const PROMPTS = [
  'The food was',
  'This movie',
  'I think the',
  'The service was',
  'My friend said',
  'The hotel',
  'It was a',
  'The book is',
  'Our waiter',
  'The music',
  'I would',
  'The story',
];

export type RewardChoice =
  { kind: AutoRewardKind; word?: string } | { kind: 'preference'; ask: AskPreference };

export interface SessionOptions {
  policy: CausalLM;
  /** The frozen base model, shared by runs (the Trainer would otherwise copy the policy at start). */
  reference: CausalLM;
  tokenizer: BpeTokenizer;
  algorithm: Algorithm;
  reward: RewardChoice;
  iterations: number;
  promptsPerIteration: number;
  maxNewTokens: number;
  onIteration: (step: number, metrics: Record<string, number>) => void;
}

export class TrainingSession {
  readonly trainer: Trainer;
  private paused = false;
  private running: Promise<void> | undefined;

  constructor(private readonly o: SessionOptions) {
    const { tokenizer } = o;
    const reward: RewardFunction =
      o.reward.kind === 'preference'
        ? batchRewardFunction(preferenceRewards(o.reward.ask), { name: 'your preference', tokenizer })
        : rewardFunction(autoReward(o.reward.kind, o.reward.word), { name: o.reward.kind, tokenizer });
    this.trainer = new Trainer({
      policy: o.policy,
      reference: o.reference,
      tokenizer,
      prompts: PROMPTS,
      reward,
      plugin: o.algorithm.plugin,
      pluginConfig: o.algorithm.pluginConfig,
      generation: { maxNewTokens: o.maxNewTokens, temperature: 1, stopTokenIds: [tokenizer.eosId] },
      promptsPerIteration: o.promptsPerIteration,
      iterations: o.iterations,
      seed: `playground/${o.algorithm.name}`,
    });
    this.trainer.on('metrics', ({ step, metrics }) => o.onIteration(step, metrics));
    this.trainer.on('warning', ({ step, message }) => console.warn(`iteration ${step}: ${message}`));
  }

  get done(): boolean {
    return this.trainer.stepsDone >= this.o.iterations;
  }

  /** Runs (or resumes) until the last iteration or {@link pause}; resolves when it stops. */
  run(): Promise<void> {
    this.paused = false;
    this.running ??= (async () => {
      try {
        while (!this.paused && !this.done) {
          await this.trainer.step();
          // On wasm a step's awaits resolve as microtasks, so without a task boundary here the page would neither
          // repaint (the charts) nor handle a click (Pause) until the whole run ends.
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Stops after the current iteration. */
  pause(): void {
    this.paused = true;
  }

  dispose(): void {
    this.trainer.dispose();
  }
}

/** One sampled answer per prompt (fixed seed, so before and after compare the same draws). */
export async function sampleAnswers(
  model: CausalLM,
  tokenizer: BpeTokenizer,
  prompts: readonly string[],
  maxNewTokens: number,
): Promise<string[]> {
  const batch = await generate(
    model,
    prompts.map((p) => tokenizer.encode(p)),
    { maxNewTokens, temperature: 1, stopTokenIds: [tokenizer.eosId], seed: 'playground/samples' },
  );
  const out: string[] = [];
  for (let b = 0; b < batch.batchSize; b++) {
    const start = b * batch.responseWidth;
    const ids = Array.from(batch.responseTokens.subarray(start, start + batch.responseLengths[b]!));
    out.push(tokenizer.decode(ids.filter((id) => id !== tokenizer.eosId)));
  }
  return out;
}
