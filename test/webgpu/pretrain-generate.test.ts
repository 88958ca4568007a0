/**
 * `relign pretrain --preset tiny --backend webgpu`, then `relign generate` from the model it wrote: the two
 * stages `relign run` does not reach. The tiny preset sizes the closing evaluation and samples
 * (`pretrain.heldOutBlocks`, `pretrain.samples`): scoring all ~2500 held-out blocks takes minutes on SwiftShader.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../apps/reference/src/cli/main.js';
import { PRESETS } from '../../apps/reference/src/config/presets.js';
import { Progress } from '../../apps/reference/src/progress.js';
import { itHasAdapter, startWebGPU } from './adapter.js';

const webgpu = await startWebGPU('pretrain-generate.test.ts');

itHasAdapter(webgpu);

/** Runs the CLI; returns its exit code, what it printed and the tfjs warnings about synchronous reads. */
async function relign(argv: string[]) {
  const lines: string[] = [];
  const progress = new Progress({ write: (t) => void lines.push(...t.trimEnd().split('\n')), isTTY: false });
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
  const t0 = performance.now();
  try {
    const code = await main(argv, { progress, print: (t) => void lines.push(t) });
    const syncReads = warnings.filter((w) => /synchronously reading/.test(w));
    return { code, lines, syncReads, seconds: (performance.now() - t0) / 1000 };
  } finally {
    console.warn = warn;
  }
}

interface HeldOut {
  loss: number;
  perplexity: number;
  targets: number;
  blocks: number;
}
/** The fields of pretrain's training.json and result.json these tests read. */
interface PretrainRecord {
  backend: string;
  steps: number;
  finalTrainLoss: number;
  heldOut: HeldOut;
  unigramBaseline: { perplexity: number };
  samples: { prompt: string; text: string }[];
}

const json = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;

describe.skipIf(!webgpu.info)('relign pretrain and generate on webgpu', () => {
  const root = mkdtempSync(join(tmpdir(), 'relign-webgpu-pretrain-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'run');
  const tiny = PRESETS.tiny.pretrain!;

  it('pretrains the tiny model and writes the model, training.json and result.json', async () => {
    const r = await relign(['pretrain', '--preset', 'tiny', '--backend', 'webgpu', '--run-dir', dir]);
    expect(r.code, r.lines.join('\n')).toBe(0);
    expect(r.lines[0]).toMatch(/^backend: webgpu /);
    expect(r.syncReads).toEqual([]);
    const out = join(dir, 'pretrain');
    for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'training.json'])
      expect(existsSync(join(out, f)), f).toBe(true);

    const record = json<PretrainRecord>(join(out, 'training.json'));
    expect(record).toMatchObject({ backend: 'webgpu', steps: tiny.steps, skippedSteps: 0 });
    expect(record.heldOut).toMatchObject({ blocks: tiny.heldOutBlocks, targets: tiny.heldOutBlocks! * 47 });
    expect(record.unigramBaseline.perplexity).toBeGreaterThan(1);
    for (const x of [record.finalTrainLoss, record.heldOut.loss, record.heldOut.perplexity])
      expect(Number.isFinite(x) && x > 0, String(x)).toBe(true);
    // Three steps from random initialisation: near log V, not diverged.
    expect(record.heldOut.loss).toBeLessThan(Math.log(tiny.vocabSize!) + 1);
    expect(record.samples.map((s) => s.prompt)).toEqual(['', 'The']);
    expect(record.samples[1]!.text).toMatch(/^The.+( \.\.\.| <\|endoftext\|>)$/s);

    const result = json<{ steps: number; heldOut: HeldOut }>(join(out, 'result.json'));
    expect(result.steps).toBe(tiny.steps);
    expect(result.heldOut.perplexity).toBe(record.heldOut.perplexity);
    expect(r.lines.join('\n')).toMatch(/held-out \(16 of \d+ blocks\): loss \d/);
    console.log(`relign pretrain --preset tiny on webgpu: ${r.seconds.toFixed(0)} s`);
  });

  it('generates from the pretrained model', async () => {
    const model = join(dir, 'pretrain');
    const argv = ['generate', '--backend', 'webgpu', '--run-dir', dir, '--model', model];
    argv.push('--prompt', 'The food was', '--prompt', 'It was a', '--n', '2', '--max-new-tokens', '6');
    const r = await relign(argv);
    expect(r.code, r.lines.join('\n')).toBe(0);
    expect(r.syncReads).toEqual([]);
    expect(r.lines).toContain(`# ${model}`);
    const rows = r.lines.filter((l) => l.includes('⟶'));
    expect(rows.map((l) => l.split(' ⟶')[0])).toEqual([
      'The food was',
      'The food was',
      'It was a',
      'It was a',
    ]);
    // Some text was sampled (the byte-level vocabulary decodes any ids), and the same seed samples the same.
    expect(rows.every((l) => l.split('⟶')[1]!.length > 0)).toBe(true);
    const again = await relign(argv);
    expect(again.lines.filter((l) => l.includes('⟶'))).toEqual(rows);
    console.log(`relign generate on webgpu: ${r.seconds.toFixed(0)} s + ${again.seconds.toFixed(0)} s`);
  });
});
