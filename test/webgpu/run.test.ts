/**
 * `relign run --preset tiny --backend webgpu` end to end: every stage on the GPU path, then the report.
 * On SwiftShader (CI's adapter: a CPU emulating a GPU, ~50x slower than wasm on a training step) the whole
 * preset (six optimizers) takes a few minutes on two cores, most of it compiling shaders on first use (346 s
 * on a shared, loaded two-core machine).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../apps/reference/src/cli/main.js';
import { buildConfig } from '../../apps/reference/src/config/load.js';
import { Progress } from '../../apps/reference/src/progress.js';
import type { StageRecord } from '../../apps/reference/src/run-dir.js';
import { itHasAdapter, startWebGPU } from './adapter.js';

const webgpu = await startWebGPU('run.test.ts');

itHasAdapter(webgpu);

describe.skipIf(!webgpu.info)('relign run --preset tiny --backend webgpu', () => {
  const root = mkdtempSync(join(tmpdir(), 'relign-webgpu-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('runs every stage and writes the report', async () => {
    const dir = join(root, 'run');
    const lines: string[] = [];
    const progress = new Progress({
      write: (t) => void lines.push(...t.trimEnd().split('\n')),
      isTTY: false,
    });
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
    const t0 = performance.now();
    let code: number;
    try {
      const argv = ['run', '--preset', 'tiny', '--backend', 'webgpu', '--run-dir', dir];
      code = await main(argv, { progress, print: (t) => void lines.push(t) });
    } finally {
      console.warn = warn;
    }
    const seconds = (performance.now() - t0) / 1000;
    expect(code, lines.join('\n')).toBe(0);
    expect(lines[0]).toMatch(/^backend: webgpu /);
    // No synchronous GPU read anywhere on the way (tfjs warns once before the first one).
    expect(warnings.filter((w) => /synchronously reading/.test(w))).toEqual([]);

    const stages = JSON.parse(readFileSync(join(dir, 'stages.json'), 'utf8')) as StageRecord[];
    // Every optimizer the tiny preset trains (the first-party ones, GRPO and RLOO included).
    const algos = buildConfig({ preset: 'tiny' }).train.algos;
    expect(algos.length).toBeGreaterThanOrEqual(4);
    expect(stages.map((s) => s.stage)).toEqual([
      'sft',
      'label',
      'reward',
      ...algos.map((a) => `train:${a}`),
      'eval',
      'frontier',
      'report',
    ]);
    for (const s of stages) expect(s.status, s.stage).toBe('done');
    expect(existsSync(join(dir, 'report', 'report.html'))).toBe(true);
    console.log(
      `relign run on webgpu: ${seconds.toFixed(0)} s; ` +
        stages.map((s) => `${s.stage} ${s.seconds.toFixed(0)} s`).join(', '),
    );
  });
});
