import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM } from '@relign/lm';
import type { RolloutBatch, RolloutMinibatch } from '@relign/rollout';
import { rewardFunction } from '@relign/reward-model';
import { useBackend } from '@relign/tensor/testing';
import { CONFORMANCE_DEFAULTS, reinforcePlugin } from './testing/index.js';
import { definePlugin, type AlgorithmInstance } from './plugin.js';
import { Trainer, type TrainerEvents } from './trainer.js';

const MODEL = CONFORMANCE_DEFAULTS.model;

/** Characters to ids 1..31 of the tiny model's vocabulary (0 is the stop token), and back. */
const charTokenizer = {
  encode: (text: string): number[] => [...text].map((c) => (c.charCodeAt(0) % 31) + 1),
  decode: (ids: ArrayLike<number>): string => Array.from(ids, (i) => String.fromCharCode(64 + i)).join(''),
};

interface MathRecord {
  prompt: string;
  answer: string;
  id: number;
}

const RECORDS: MathRecord[] = Array.from({ length: 6 }, (_, i) => ({
  prompt: `${i}+${i + 3}=`,
  answer: String(2 * i + 3),
  id: i,
}));

const key = (ids: ArrayLike<number>): string => Array.from(ids).join(',');
/** Encoded prompt → its record, to identify the prompt of a batch row from its tokens. */
const byTokens = new Map(RECORDS.map((r) => [key(charTokenizer.encode(r.prompt)), r]));

/** The reinforce test plugin, recording every minibatch its update receives. */
function recordingPlugin(seen: RolloutMinibatch[]) {
  return definePlugin({
    ...reinforcePlugin,
    name: 'records-test',
    create: (context, config): AlgorithmInstance => {
      const inner = reinforcePlugin.create(context, config);
      return {
        update: (batch, ctx) => {
          seen.push(batch);
          return inner.update(batch, ctx);
        },
        evaluate: (batch, ctx) => inner.evaluate(batch, ctx),
        state: () => inner.state(),
        load: (s) => inner.load(s),
        dispose: () => inner.dispose(),
      };
    },
  });
}

/** The record of row b of a batch, found from its (left-padded) prompt tokens. */
function recordOfRow(batch: RolloutBatch, b: number): MathRecord {
  const Tp = batch.promptWidth;
  const tokens = batch.promptTokens.slice(b * Tp + Tp - batch.promptLengths[b]!, (b + 1) * Tp);
  const r = byTokens.get(key(tokens));
  if (!r) throw new Error(`row ${b}: prompt tokens ${key(tokens)} are no record's`);
  return r;
}

describe('Trainer: prompt records reach the reward function', () => {
  beforeAll(() => useBackend('cpu'));

  it('a checkable reward reads record.answer: right record for every response (G = 2) and across the replay buffer', async () => {
    const policy = CausalLM.create(MODEL, 7);
    const calls: { prompt: string; record: MathRecord | undefined; index: number }[] = [];
    // The reward is the record's answer: any row scored with another prompt's record gets another reward.
    const reward = rewardFunction<MathRecord>((prompt, _response, info) => {
      calls.push({ prompt, record: info.record, index: info.index });
      return Number(info.record!.answer);
    });
    const seen: RolloutMinibatch[] = [];
    const trainer = new Trainer({
      policy,
      tokenizer: charTokenizer,
      prompts: RECORDS,
      reward,
      plugin: recordingPlugin(seen),
      pluginConfig: { responsesPerPrompt: 2, lr: 1e-2, epochs: 1, groupsPerMinibatch: 2 },
      generation: { maxNewTokens: 4, stopTokenIds: [0] },
      promptsPerIteration: 2,
      bufferCapacity: 4, // each update also sees the previous iteration's groups
      iterations: 3,
      seed: 5,
    });
    const rollouts: TrainerEvents['rollout'][] = [];
    trainer.on('rollout', (r) => rollouts.push(r));
    try {
      await trainer.train();
      expect(rollouts).toHaveLength(3);
      expect(calls).toHaveLength(3 * 2 * 2);
      for (const c of calls) {
        // The record given (same object), and the prompt text it belongs to.
        expect(RECORDS).toContain(c.record);
        expect(c.prompt).toBe(c.record!.prompt);
      }
      for (const [k, r] of rollouts.entries()) {
        const rows = calls.slice(4 * k, 4 * k + 4);
        r.promptIndices.forEach((p, g) => {
          for (const j of [0, 1]) {
            // Rows g·G and g·G + 1 are the two responses to prompt p.
            expect(rows[2 * g + j]!.record).toBe(RECORDS[p]);
            expect(r.rewards[2 * g + j]).toBe(Number(RECORDS[p]!.answer));
            expect(recordOfRow(r.batch, 2 * g + j)).toBe(RECORDS[p]);
          }
        });
      }
      // Updates 2 and 3 hand older groups again (capacity 4 = two iterations): each row keeps its own reward.
      expect(seen.map((b) => b.batchSize)).toEqual([4, 8, 8]);
      for (const batch of seen) {
        for (let b = 0; b < batch.batchSize; b++) {
          expect(batch.rewards[b]).toBe(Number(recordOfRow(batch, b).answer));
        }
      }
    } finally {
      trainer.dispose();
      policy.dispose();
    }
  });

  it('takes strings, token arrays and {tokens, texts}, giving each bare prompt the record { prompt }', async () => {
    const policy = CausalLM.create(MODEL, 7);
    const records: unknown[] = [];
    const reward = rewardFunction(
      (_p, _r, info) => {
        records.push(info.record);
        return 0;
      },
      { inputKind: 'tokens' },
    );
    const common = {
      policy,
      tokenizer: charTokenizer,
      reward,
      plugin: reinforcePlugin,
      pluginConfig: { responsesPerPrompt: 1 },
      generation: { maxNewTokens: 2, stopTokenIds: [0] },
      iterations: 1,
    };
    try {
      const mixed = ['ab', [3, 4, 5], { prompt: 'cd', tag: 'x' }] as const;
      const t1 = new Trainer({ ...common, prompts: mixed, promptsPerIteration: 3 });
      await t1.step();
      t1.dispose();
      expect(records).toHaveLength(3);
      expect(records).toEqual(expect.arrayContaining([{ prompt: 'ab' }, { prompt: [3, 4, 5] }]));
      expect(records).toContain(mixed[2]); // the record itself, extra fields included
      records.length = 0;
      const t2 = new Trainer({
        ...common,
        prompts: { tokens: [[1, 2], [3]], texts: ['AB', 'C'] },
        promptsPerIteration: 2,
      });
      await t2.step();
      t2.dispose();
      expect(records).toEqual(expect.arrayContaining([{ prompt: 'AB' }, { prompt: 'C' }]));
    } finally {
      policy.dispose();
    }
  });

  it('takes a per-response function of text whose info.record is the prompt record, in training and evaluation', async () => {
    const policy = CausalLM.create(MODEL, 7);
    const trainer = new Trainer({
      policy,
      tokenizer: charTokenizer,
      prompts: RECORDS,
      evalPrompts: RECORDS.slice(0, 4),
      reward: (_prompt, _response, { record }) => Number(record.answer),
      plugin: reinforcePlugin,
      generation: { maxNewTokens: 3, stopTokenIds: [0] },
      promptsPerIteration: 3,
      iterations: 1,
    });
    try {
      const m = await trainer.step();
      expect(m['reward/mean']).toBeGreaterThan(0);
      const ev = await trainer.evaluate();
      // Mean of the answers 3, 5, 7, 9: every evaluation row was scored with its own record.
      expect(ev['eval/reward/mean']).toBeCloseTo(6, 10);
    } finally {
      trainer.dispose();
      policy.dispose();
    }
  });

  it('says what is wrong with a prompt: text without a tokenizer, a record without prompt, an empty prompt', () => {
    const policy = CausalLM.create(MODEL, 7);
    const base = {
      policy,
      reward: rewardFunction(() => 0, { inputKind: 'tokens' }),
      plugin: reinforcePlugin,
      generation: { maxNewTokens: 2, stopTokenIds: [0] },
      promptsPerIteration: 1,
      iterations: 1,
    };
    try {
      expect(() => new Trainer({ ...base, prompts: [[1], 'ab'] })).toThrow(
        /options\.prompts\[1\] is text: pass options\.tokenizer/,
      );
      expect(() => new Trainer({ ...base, prompts: [{ question: 'x' } as never] })).toThrow(
        /options\.prompts\[0\] is a record without a 'prompt' field/,
      );
      expect(
        () => new Trainer({ ...base, tokenizer: charTokenizer, prompts: [{ prompt: '', answer: 1 }] }),
      ).toThrow(/options\.prompts\[0\]\.prompt encoded must be a non-empty array/);
      expect(
        () => new Trainer({ ...base, prompts: [[1]], reward: (_p: string, r: string) => r.length }),
      ).toThrow(/options\.tokenizer is needed to decode/);
    } finally {
      policy.dispose();
    }
  });
});
