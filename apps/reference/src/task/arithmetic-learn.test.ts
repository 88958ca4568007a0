/**
 * GRPO lifts held-out accuracy on task arithmetic (issue 17's done-when): `relign run --task arithmetic` with the
 * `demo` overlay's SFT and GRPO settings, for two seeds (each seed changes the held-out split, the SFT model and
 * the RL samples). Gold is greedy held-out accuracy (the eval stage's metric for this task). Slow (about 3 minutes
 * per seed on two cores), and run by `npm test` all the same: it is the one check that GRPO learns this task.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@relign/tensor/testing';
import { main } from '../cli/main.js';
import type { EvalResult } from '../eval/types.js';
import { Progress } from '../progress.js';

const json = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

describe('GRPO on task arithmetic', () => {
  /** Greedy held-out accuracy of GRPO minus SFT's, per seed. */
  const gains: number[] = [];
  const root = mkdtempSync(join(tmpdir(), 'relign-arith-learn-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it.each([0, 1])(
    'raises greedy held-out accuracy above the SFT model (seed %i)',
    async (seed) => {
      const dir = join(root, `seed-${seed}`);
      const lines: string[] = [];
      // The demo overlay's settings; only GRPO is trained and checkpoints are not evaluated, to keep it short.
      const argv = [
        'run',
        '--task',
        'arithmetic',
        '--preset',
        'demo',
        '--run-dir',
        dir,
        '--seed',
        String(seed),
      ];
      argv.push('--train.algos', 'grpo', '--eval.checkpoints', 'false');
      const code = await main(argv, {
        progress: new Progress({ write: (t) => void lines.push(t), isTTY: false }),
        initBackend: false,
        print: (t) => void lines.push(t),
      });
      expect(code, lines.join('')).toBe(0);
      const sft = json<EvalResult>(join(dir, 'eval', 'sft.json'));
      const grpo = json<EvalResult>(join(dir, 'eval', 'grpo.json'));
      // One seed's gain moves by several points when float rounding changes (a new kernel): measured +8.6,
      // +5.5, +6.3 points (seeds 0-2) before the fused backward kernels and +2.3, +9.4, 0.0 after, on 128
      // held-out problems. So each seed must not lower accuracy, and the mean over seeds must gain 3 points.
      const gain = grpo.gold.mean - sft.gold.mean;
      expect(gain, lines.join('')).toBeGreaterThanOrEqual(0);
      gains.push(gain);
    },
    900_000,
  );

  it('gains at least 3 points of greedy held-out accuracy on average over the seeds', () => {
    expect(gains).toHaveLength(2);
    const mean = gains.reduce((a, b) => a + b, 0) / gains.length;
    expect(
      mean,
      `gains per seed: ${gains.map((g) => (100 * g).toFixed(1)).join(', ')} points`,
    ).toBeGreaterThanOrEqual(0.03);
  });
});
