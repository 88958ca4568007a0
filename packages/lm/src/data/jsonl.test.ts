import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPromptCompletionJsonl } from './jsonl.js';

const parse = (text: string, source?: string) =>
  readPromptCompletionJsonl({ text, ...(source !== undefined ? { source } : {}) });

describe('prompt/completion JSONL', () => {
  it('parses lines, skips blank lines, ignores extra fields, accepts CRLF and a BOM', async () => {
    const text =
      '\uFEFF{"prompt": "Hi", "completion": " there"}\r\n\n  \n{"prompt": "", "completion": "x", "id": 7}\n';
    expect(await parse(text)).toEqual([
      { prompt: 'Hi', completion: ' there' },
      { prompt: '', completion: 'x' },
    ]);
  });

  it('names the line of invalid JSON', async () => {
    const text = '{"prompt": "a", "completion": "b"}\n\n{"prompt": "a", "completion": }\n';
    await expect(parse(text, 'data.jsonl')).rejects.toThrow(/^data\.jsonl line 3: not valid JSON/);
  });

  it('names the line and the field that is missing or not a string', async () => {
    const ok = '{"prompt": "a", "completion": "b"}\n';
    await expect(parse(ok + '{"prompt": "a"}')).rejects.toThrow(/line 2: field "completion" is missing/);
    await expect(parse(ok + ok + '{"prompt": 3, "completion": "b"}')).rejects.toThrow(
      /line 3: field "prompt" must be a string, got number/,
    );
    await expect(parse('{"prompt": "a", "completion": null}')).rejects.toThrow(
      /line 1: field "completion" must be a string, got null/,
    );
    await expect(parse('["a", "b"]')).rejects.toThrow(/line 1: expected a JSON object .* got an array/);
  });

  it('reads a file and reports its path in errors; text input works too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relign-jsonl-'));
    try {
      const path = join(dir, 'train.jsonl');
      await writeFile(path, '{"prompt": "p", "completion": "c"}\n{"prompt": "p"}\n');
      await expect(readPromptCompletionJsonl(path)).rejects.toThrow(
        `${path} line 2: field "completion" is missing`,
      );
      await writeFile(path, '{"prompt": "p", "completion": "c"}\n');
      await expect(readPromptCompletionJsonl(path)).resolves.toEqual([{ prompt: 'p', completion: 'c' }]);
      await expect(readPromptCompletionJsonl(join(dir, 'nope.jsonl'))).rejects.toThrow(
        /cannot read .*nope\.jsonl/,
      );
      await expect(readPromptCompletionJsonl({ text: 'oops', source: 'mem' })).rejects.toThrow(
        /^mem line 1: not valid JSON/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
