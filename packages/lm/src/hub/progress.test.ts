import { describe, expect, it } from 'vitest';
import { terminalProgress } from './progress.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; out: string[] } {
  const out: string[] = [];
  const stream = { isTTY, columns: 80, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream;
  return { stream, out };
}

describe('terminalProgress', () => {
  it('redraws one line with the file, a bar, the percentage and sizes, and ends it when the file is done', () => {
    const { stream, out } = fakeStream(true);
    const bar = terminalProgress(stream, 0);
    const p = { repo: 'org/m', file: 'model.safetensors', total: 2_000_000 };
    bar({ ...p, downloaded: 500_000, done: false });
    bar({ ...p, downloaded: 2_000_000, done: true });
    expect(out).toHaveLength(2);
    const CLEAR = '\u001b[K'; // erase to the end of the line
    expect(out[0]!.startsWith('\rmodel.safetensors [')).toBe(true);
    expect(out[0]!.endsWith(`]  25% 0.5 MB/2.0 MB${CLEAR}`)).toBe(true);
    expect(out[0]).toContain('=>');
    expect(out[1]!.endsWith(`] 100% 2.0 MB/2.0 MB${CLEAR}\n`)).toBe(true);
    expect(out[1]).not.toContain('>');
  });

  it('throttles redraws but always draws the last one; prints nothing when not a TTY', () => {
    const { stream, out } = fakeStream(true);
    const bar = terminalProgress(stream, 60_000);
    const p = { repo: 'org/m', file: 'f', total: 10 };
    for (let i = 1; i < 10; i++) bar({ ...p, downloaded: i, done: false });
    bar({ ...p, downloaded: 10, done: true });
    expect(out).toHaveLength(2);
    const pipe = fakeStream(false);
    terminalProgress(pipe.stream, 0)({ ...p, downloaded: 10, done: true });
    expect(pipe.out).toEqual([]);
  });
});
