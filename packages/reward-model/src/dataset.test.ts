import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPreferenceJsonl, type ReadPreferenceOptions } from './dataset.js';
import { wordTokenizer } from './test-fixtures.js';
import { tokenizePreferencePairs } from './tokenize-pairs.js';

const line = (o: unknown) => JSON.stringify(o);
const parse = (text: string, options: ReadPreferenceOptions & { source?: string } = {}) => {
  const { source, ...rest } = options;
  return readPreferenceJsonl({ text, ...(source !== undefined ? { source } : {}) }, rest);
};

describe('readPreferenceJsonl on text', () => {
  it('reads TRL preference rows, margins, blank lines, CRLF and a BOM', async () => {
    const text =
      '\uFEFF' +
      [
        line({ prompt: 'the food was', chosen: ' good', rejected: ' bad', id: 7 }),
        '',
        line({ prompt: '', chosen: 'a', rejected: 'b', margin: 0.5 }) + '\r',
        '   ',
      ].join('\n');
    const ds = await parse(text);
    expect(ds.pairs).toEqual([
      { prompt: 'the food was', chosen: ' good', rejected: ' bad' },
      { prompt: '', chosen: 'a', rejected: 'b', margin: 0.5 },
    ]);
    expect(ds.identicalLines).toEqual([]);
  });

  it('names the line and field of every kind of bad row', async () => {
    const good = line({ prompt: 'p', chosen: 'c', rejected: 'r' });
    const bad = (row: string) => parse([good, '', row].join('\n'), { source: 'prefs.jsonl' });
    await expect(bad('{"prompt": "p", "chosen": "c"')).rejects.toThrow(
      /^prefs\.jsonl line 3: not valid JSON/,
    );
    await expect(bad('[1, 2]')).rejects.toThrow(
      /prefs\.jsonl line 3: expected a JSON object .* got an array/,
    );
    await expect(bad(line({ chosen: 'c', rejected: 'r' }))).rejects.toThrow(
      /prefs\.jsonl line 3: field "prompt" is missing.*use "" when chosen and rejected already contain the prompt/,
    );
    await expect(bad(line({ prompt: 'p', chosen: 'c' }))).rejects.toThrow(
      /line 3: field "rejected" is missing/,
    );
    await expect(bad(line({ prompt: 'p', chosen: 3, rejected: 'r' }))).rejects.toThrow(
      /line 3: field "chosen" must be a string, got number/,
    );
    await expect(
      bad(line({ prompt: 'p', chosen: [{ role: 'assistant', content: 'hi' }], rejected: 'r' })),
    ).rejects.toThrow(
      /line 3: field "chosen" must be a string, got an array \(conversational rows need a tokenizer with a chat template/,
    );
    await expect(bad(line({ prompt: 'p', chosen: 'c', rejected: 'r', margin: 'big' }))).rejects.toThrow(
      /line 3: field "margin" must be a finite number/,
    );
  });

  it("renders conversational rows (message lists) with the tokenizer's chat template", async () => {
    // A toy template: "<role>content</s>" per message, "<assistant>" as the generation prompt; </s> is the EOS.
    const chat = {
      ...wordTokenizer,
      idToToken: (id: number) => (id === 0 ? '</s>' : undefined),
      applyChatTemplate: (
        msgs: readonly { role: string; content: string }[],
        o: { addGenerationPrompt?: boolean } = {},
      ) =>
        msgs.map((m) => `<${m.role}> ${m.content} </s> `).join('') +
        (o.addGenerationPrompt ? '<assistant> ' : ''),
    };
    const row = {
      prompt: [{ role: 'user', content: 'the food was' }],
      chosen: [{ role: 'assistant', content: 'good' }],
      rejected: [{ role: 'assistant', content: 'bad' }],
    };
    const ds = await readPreferenceJsonl({ text: line(row), source: 'c.jsonl' }, { tokenizer: chat });
    expect(ds.pairs).toEqual([
      { prompt: '<user> the food was </s> <assistant> ', chosen: 'good ', rejected: 'bad ' },
    ]);
    await expect(
      readPreferenceJsonl(
        { text: line({ ...row, rejected: [{ role: 'robot', content: 'x' }] }), source: 'c.jsonl' },
        {
          tokenizer: chat,
        },
      ),
    ).rejects.toThrow(/c\.jsonl line 1: field "rejected"\[0\]\.role is "robot"/);
  });

  it('skips and counts pairs whose chosen equals rejected, or rejects them on request', async () => {
    const text = [
      line({ prompt: 'p', chosen: 'same', rejected: 'same' }),
      line({ prompt: 'p', chosen: 'c', rejected: 'r' }),
    ].join('\n');
    const ds = await parse(text);
    expect(ds.pairs).toHaveLength(1);
    expect(ds.identicalLines).toEqual([1]);
    await expect(parse(text, { identical: 'error', source: 'x' })).rejects.toThrow(
      /x line 1: fields "chosen" and "rejected" are identical/,
    );
  });
});

describe('readPreferenceJsonl', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rm-data-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file (errors name the path) or in-memory text', async () => {
    const path = join(dir, 'prefs.jsonl');
    await writeFile(path, line({ prompt: 'p', chosen: 'c', rejected: 'r' }) + '\n{"prompt": 1}\n');
    await expect(readPreferenceJsonl(path)).rejects.toThrow(
      `${path} line 2: field "prompt" must be a string`,
    );
    const ds = await readPreferenceJsonl({ text: line({ prompt: 'p', chosen: 'c', rejected: 'r' }) });
    expect(ds.pairs).toHaveLength(1);
    await expect(readPreferenceJsonl(join(dir, 'none.jsonl'))).rejects.toThrow(/cannot read .*none\.jsonl/);
  });

  it('says an empty file (or one of blank lines) is empty, naming it', async () => {
    const path = join(dir, 'pairs.jsonl');
    await writeFile(path, '');
    await expect(readPreferenceJsonl(path)).rejects.toThrow(`${path} is empty: it holds no preference pair`);
    await writeFile(path, '\n  \n');
    await expect(readPreferenceJsonl(path)).rejects.toThrow(`${path} is empty`);
  });
});

describe('tokenizePreferencePairs', () => {
  it('makes prompt + response + EOS on each side, cuts prompts from the left, drops what cannot fit', () => {
    const r = tokenizePreferencePairs(
      [
        { prompt: 'the food was', chosen: 'good', rejected: 'bad and awful', margin: 1 },
        { prompt: 'the movie is a place', chosen: 'good', rejected: 'bad' },
        { prompt: 'it', chosen: 'good good good good good', rejected: 'bad' },
      ],
      wordTokenizer,
      { maxLength: 5 },
    );
    expect(r.kept).toEqual([0, 1]);
    expect(r.dropped).toBe(1);
    expect(r.promptTruncated).toBe(2);
    const [p0, p1] = r.pairs;
    expect(Array.from(p0!.chosen.ids)).toEqual([...wordTokenizer.encode('the food was good'), 0]);
    expect(p0!.chosen.promptLength).toBe(3);
    // 'bad and awful' + EOS leaves room for one prompt token: the last one.
    expect(Array.from(p0!.rejected.ids)).toEqual([...wordTokenizer.encode('was bad and awful'), 0]);
    expect(p0!.rejected.promptLength).toBe(1);
    expect(p0!.margin).toBe(1);
    expect(p1!.margin).toBeUndefined();
    expect(Array.from(p1!.chosen.ids)).toEqual([...wordTokenizer.encode('is a place good'), 0]);
  });

  it('rejects malformed pairs', () => {
    expect(() =>
      tokenizePreferencePairs([{ prompt: 'p', chosen: 'c' } as never], wordTokenizer, { maxLength: 8 }),
    ).toThrow(/pairs\[0\] must be \{prompt, chosen, rejected\}/);
  });
});
