import { it } from 'vitest';
import { useBackend } from '@relign/tensor/testing';
import { buildConfig } from '../src/config/load.js';
import { pipelineStages, runStage, prepareRunDir } from '../src/pipeline.js';
import { Progress } from '../src/progress.js';

it('scratch stages', async () => {
  await useBackend('wasm');
  const dir = process.env.SCRATCH_DIR!;
  const cfg = buildConfig({ preset: process.env.SCRATCH_PRESET ?? 'demo', flags: new Map([['runDir', dir], ...(JSON.parse(process.env.SCRATCH_FLAGS ?? '[]') as [string,string][])]) });
  const progress = new Progress({ write: (t) => process.stdout.write(t), isTTY: false });
  const run = await prepareRunDir(cfg, true);
  const ctx = { cfg, run, progress, signal: new AbortController().signal, resume: false };
  for (const name of process.env.SCRATCH_STAGES!.split(',')) {
    const st = pipelineStages(cfg).find((s) => s.name === name)!;
    await runStage(ctx, st);
  }
}, 1_800_000);
