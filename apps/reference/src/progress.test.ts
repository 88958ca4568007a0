import { describe, expect, it } from 'vitest';
import { formatDuration, formatMetrics, Progress } from './progress.js';

function fakeSink(isTTY: boolean) {
  const out: string[] = [];
  return { sink: { write: (t: string) => void out.push(t), isTTY, columns: 200 }, out };
}

describe('Progress', () => {
  it('formats durations and metrics', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(65)).toBe('1m05s');
    expect(formatDuration(3720)).toBe('1h02m');
    expect(formatDuration(NaN)).toBe('?');
    expect(formatMetrics({ loss: 0.12345, step: 3, kl: 1e-7, tag: 'x' })).toBe(
      'loss 0.123, step 3, kl 1.00e-7, tag x',
    );
  });

  it('prints plain lines at each tenth of the task when not a TTY, with an ETA from the elapsed time', () => {
    let now = 0;
    const { sink, out } = fakeSink(false);
    const p = new Progress(sink, () => now);
    const task = p.task('sft', 20);
    expect(out).toEqual(['sft: 0/20\n']);
    now = 1000;
    task.update(1, { loss: 2 }); // 5 %: no new tenth yet
    expect(out).toHaveLength(1);
    now = 2000;
    task.update(2, { loss: 1.5 }); // 10 %: a line; 1 s per step, 18 steps left
    expect(out[1]).toBe('sft: 2/20, ETA 18s, loss 1.50\n');
    now = 2500;
    task.update(3);
    expect(out).toHaveLength(2);
    // Every 30 s at least, even within a tenth.
    now = 40_000;
    task.update(3, { loss: 1 });
    expect(out).toHaveLength(3);
    task.finish('done well');
    expect(out[3]).toBe('sft: done well (40s)\n');
  });

  it('redraws one line with a bar on a TTY and clears it before log lines', () => {
    let now = 0;
    const { sink, out } = fakeSink(true);
    const p = new Progress(sink, () => now);
    const task = p.task('train p3o-v2', 4);
    expect(out).toHaveLength(0);
    now = 2000;
    task.update(1, { reward: 0.5 });
    expect(out[0]).toBe('\r\x1b[2Ktrain p3o-v2 ██████░░░░░░░░░░░░░░░░░░ 1/4 25% ETA 6s | reward 0.500');
    now = 2050;
    task.update(2, { reward: 0.6 }); // within 100 ms of the last draw: not redrawn
    expect(out).toHaveLength(1);
    p.line('hello');
    expect(out.slice(1)).toEqual(['\r\x1b[2K', 'hello\n']);
  });

  it('takes a first update past the start as a resume point for the ETA', () => {
    let now = 0;
    const { sink } = fakeSink(false);
    const task = new Progress(sink, () => now).task('sft', 100);
    now = 5000;
    task.update(41); // resumed from a checkpoint at step 40: the clock starts now
    now = 7000;
    task.update(42); // 1 step in 2 s, 58 left
    expect(task.eta()).toBe(116);
  });

  it('counts resumed steps out of the ETA', () => {
    let now = 0;
    const { sink, out } = fakeSink(false);
    const p = new Progress(sink, () => now);
    const task = p.task('train dpo', 10, 5);
    expect(out[0]).toBe('train dpo: resuming at 5/10\n');
    now = 3000;
    task.update(6); // 1 step in 3 s here, 4 left
    expect(task.eta()).toBe(12);
  });
});
