import { describe, expect, it } from 'vitest';
import { loadPreferencePairs } from './data.js';

// Words are ids; a toy chat template "<role> content </s>" per message, "<assistant>" as the generation prompt.
const WORDS = ['</s>', '<user>', '<assistant>', 'hi', 'hello', 'go'];
const tokenizer = {
  encode: (text: string) =>
    text
      .split(/\s+/)
      .filter((w) => w !== '')
      .map((w) => WORDS.indexOf(w)),
  eosId: 0,
  padId: 0,
  idToToken: (id: number) => WORDS[id],
  applyChatTemplate: (
    msgs: readonly { role: string; content: string }[],
    o: { addGenerationPrompt?: boolean } = {},
  ) =>
    msgs.map((m) => `<${m.role}> ${m.content} </s> `).join('') +
    (o.addGenerationPrompt ? '<assistant> ' : ''),
};

describe('loadPreferencePairs', () => {
  it('renders conversational rows with the chat template: prompt ++ response ++ [eos], the EOS once', async () => {
    const row = {
      prompt: [{ role: 'user', content: 'hi' }],
      chosen: [{ role: 'assistant', content: 'hello' }],
      rejected: [{ role: 'assistant', content: 'go' }],
    };
    const data = await loadPreferencePairs({ text: JSON.stringify(row) }, tokenizer, { maxLength: 16 });
    const { chosen, rejected } = data.pairs[0]!;
    expect(Array.from(chosen.ids)).toEqual([1, 3, 0, 2, 4, 0]);
    expect(chosen.promptLength).toBe(4);
    expect(Array.from(rejected.ids)).toEqual([1, 3, 0, 2, 5, 0]);
  });
});
