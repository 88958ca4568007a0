import type { ChatMessage } from '@relign/lm';
import { describe, expect, it } from 'vitest';
import { resolvePrompts } from './prompts.js';

// Characters are ids; a toy chat template: "[role]content" per message, "[assistant]" as the generation prompt.
const chat = {
  encode: (text: string) => Array.from(text, (c) => c.charCodeAt(0)),
  applyChatTemplate: (msgs: readonly ChatMessage[], o: { addGenerationPrompt?: boolean } = {}) =>
    msgs.map((m) => `[${m.role}]${m.content}`).join('') + (o.addGenerationPrompt ? '[assistant]' : ''),
};
const codes = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

describe('resolvePrompts with chat messages', () => {
  const messages: ChatMessage[] = [
    { role: 'system', content: 'S' },
    { role: 'user', content: 'Q' },
  ];

  it('renders message lists with the generation prompt, alone or as a record prompt', () => {
    const r = resolvePrompts([messages, { prompt: messages, answer: '4' }, 'plain'], 'prompts', chat);
    expect(r.texts).toEqual(['[system]S[user]Q[assistant]', '[system]S[user]Q[assistant]', 'plain']);
    expect(r.tokens[0]).toEqual(codes('[system]S[user]Q[assistant]'));
    expect(r.records[1]).toEqual({ prompt: messages, answer: '4' });
    // Token arrays are still token arrays.
    expect(resolvePrompts([[1, 2]], 'prompts', chat).tokens).toEqual([[1, 2]]);
  });

  it('names the prompt when the tokenizer has no chat template or a message is malformed', () => {
    expect(() => resolvePrompts([messages], 'prompts', { encode: chat.encode })).toThrow(
      /Trainer: options.prompts\[0\] is a list of chat messages: pass options.tokenizer with a chat template/,
    );
    expect(() => resolvePrompts([{ prompt: [{ role: 'user' }] }], 'evalPrompts', chat)).toThrow(
      /options.evalPrompts\[0\]\.prompt\[0\] has no "content"/,
    );
  });
});
