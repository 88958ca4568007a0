import { it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '@relign/tensor/testing';
import { buildConfig } from '../src/config/load.js';
import { runPipeline, formatStageTimes } from '../src/pipeline.js';
import { Progress } from '../src/progress.js';

it('scratch tiny', async () => {
  await useBackend('wasm');
  const dir = process.env.SCRATCH_DIR ?? mkdtempSync(join(tmpdir(), 'relign-tiny-'));
  const cfg = buildConfig({ preset: process.env.SCRATCH_PRESET ?? 'tiny', flags: new Map([['runDir', dir], ...(JSON.parse(process.env.SCRATCH_FLAGS ?? '[]') as [string,string][])]) });
  const progress = new Progress({ write: (t) => process.stdout.write(t), isTTY: false });
  const only = process.env.SCRATCH_ONLY ? process.env.SCRATCH_ONLY.split(',') : ['sft', 'label', 'reward', 'train:ppo-max', 'train:dpo', 'train:p3o-v1', 'train:p3o-v2', 'eval', 'frontier'];
  const r = await runPipeline({ cfg, progress, only, resume: process.env.SCRATCH_RESUME === '1' });
  console.log(formatStageTimes(r.stages));
  console.log(dir);
}, 1_800_000);
