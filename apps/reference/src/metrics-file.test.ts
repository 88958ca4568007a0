import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsFile, readMetrics } from './metrics-file.js';

describe('MetricsFile', () => {
  it('writes one line per step, non-finite values as null', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'relign-metrics-')), 'a', 'metrics.jsonl');
    const f = new MetricsFile(path, false);
    f.write({ step: 1, loss: 2 });
    f.write({ step: 2, loss: NaN });
    expect(readFileSync(path, 'utf8')).toBe('{"step":1,"loss":2}\n{"step":2,"loss":null}\n');
  });

  it('on resume drops the lines at or after the first step written again; without resume starts empty', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'relign-metrics-')), 'metrics.jsonl');
    const f = new MetricsFile(path, false);
    for (let s = 1; s <= 5; s++) f.write({ step: s });
    const g = new MetricsFile(path, true); // the checkpoint was at step 3; steps 4, 5 are redone
    g.write({ step: 4, again: true });
    g.write({ step: 5, again: true });
    expect(readMetrics(path).map((m) => [m.step, m.again ?? false])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
      [5, true],
    ]);
    new MetricsFile(path, false);
    expect(readMetrics(path)).toEqual([]);
  });
});
