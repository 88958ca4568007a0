import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJsonl, type JsonlRecord } from './jsonl-reader.js';

const collect = async (records: AsyncIterable<JsonlRecord>) => {
  const out: JsonlRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
};

describe('readJsonl', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relign-jsonl-reader-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('streams the objects of a file with their line numbers, across blank lines, CRLF and a BOM', async () => {
    const path = join(dir, 'rows.jsonl');
    const rows = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ i, text: 'x'.repeat(50) }));
    await writeFile(path, '\uFEFF' + rows.join('\r\n') + '\n\n   \n');
    const records = await collect(readJsonl(path));
    expect(records).toHaveLength(5000);
    expect(records[0]).toEqual({ value: { i: 0, text: 'x'.repeat(50) }, line: 1, where: `${path} line 1` });
    expect(records[4999]!.line).toBe(5000);
  });

  it('names the file and line of a line that is not a JSON object, with the expected shape', async () => {
    const path = join(dir, 'bad.jsonl');
    await writeFile(path, '{"a": 1}\n\n{"a": }\n');
    await expect(collect(readJsonl(path, { shape: '{"a": number}' }))).rejects.toThrow(
      `${path} line 3: not valid JSON (`,
    );
    await expect(
      collect(readJsonl({ text: '{}\n7', source: 'mem' }, { shape: '{"a": number}' })),
    ).rejects.toThrow('mem line 2: expected a JSON object {"a": number}, got number.');
  });

  it('hands bad lines to onInvalid and keeps reading when asked to', async () => {
    const problems: number[] = [];
    const text = '{"a": 1}\n{"a": \n[1]\n{"a": 2}';
    const records = await collect(readJsonl({ text }, { onInvalid: (_p, line) => void problems.push(line) }));
    expect(records.map((r) => r.value)).toEqual([{ a: 1 }, { a: 2 }]);
    expect(problems).toEqual([2, 3]);
  });

  it('says which path cannot be read, with the caller, keeping the cause', async () => {
    const missing = join(dir, 'none.jsonl');
    const err = await collect(readJsonl(missing, { caller: 'readThings' })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^readThings: cannot read .*none\.jsonl \(ENOENT/);
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    await expect(collect(readJsonl(dir))).rejects.toThrow(/^readJsonl: cannot read .*\(EISDIR/);
    await expect(collect(readJsonl(''))).rejects.toThrow('readJsonl: pass a file path, or { text }');
  });
});
